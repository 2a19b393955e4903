/* Chat with rooms on libroomcast, with callbacks (they run on roomcast's
 * threads). Clients connect with auth {"name": ...} (JSON-protocol clients:
 * ?name=...), which becomes their user id; events:
 *   join ["room"]          -> joins, acks ["joined", "room"]
 *   say  ["room", "text"]  -> everyone in the room gets said ["room", "text"], acks [true]
 *   ask  []                -> the server asks the client "question" [6, 7] and
 *                             sends back "answer" [its ack, or "timeout"]
 *   blob <bytes>           -> the bytes come back as blob <bytes>
 *   rooms []               -> acks [["<socket id>", "room", ...]]
 *   dm   ["user", "text"]  -> every socket of that user gets dm ["user", "text"]
 *   kick []                -> the server closes the connection
 *   anything else with an ack is echoed back.
 * Build: cc chat_server.c $(pkg-config --cflags --libs roomcast)
 * Run:   ./chat_server [host:port]   (prints "listening on <port>"; SIGTERM stops it) */
#include <roomcast.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The n-th string of a flat JSON array of strings (no escapes), into buf. */
static int nth_string(const char *json, int n, char *buf, size_t size) {
  const char *p = json;
  for (int i = 0; i <= n; i++) {
    const char *open = strchr(p, '"');
    if (!open) return -1;
    const char *close = strchr(open + 1, '"');
    if (!close) return -1;
    if (i == n) {
      size_t len = (size_t)(close - open - 1);
      if (len + 1 > size) return -1;
      memcpy(buf, open + 1, len);
      buf[len] = '\0';
      return 0;
    }
    p = close + 1;
  }
  return -1;
}

static void on_connect(void *user_data, roomcast_event *ev) {
  (void)user_data;
  if (roomcast_event_get_type(ev) != ROOMCAST_EVENT_CONNECT) return; /* CONNECTED: nothing to do */
  const char *auth = NULL, *name = NULL;
  roomcast_event_get_data(ev, &auth, NULL);
  /* Socket.IO clients name themselves in auth, JSON-protocol ones in the query. */
  char user[64];
  if (nth_string(auth, 0, user, sizeof user) == 0 && strcmp(user, "name") == 0 &&
      nth_string(auth, 1, user, sizeof user) == 0) {
    roomcast_event_accept(ev, user); /* {"name": "<user>"}: its sockets share the room "user:<user>" */
  } else if (roomcast_event_get_query(ev, "name", &name) == ROOMCAST_RESULT_OK) {
    roomcast_event_accept(ev, name);
  } else {
    roomcast_event_refuse(ev, "pick a name first");
  }
}

struct asked {
  roomcast_server *server;
  char socket_id[64];
};

static void on_answer(void *user_data, roomcast_result result, const char *args_json, size_t len) {
  struct asked *asked = user_data;
  if (result == ROOMCAST_RESULT_OK) {
    roomcast_server_emit(asked->server, asked->socket_id, "answer", args_json, len, NULL);
  } else {
    const char *timeout = "[\"timeout\"]";
    roomcast_server_emit(asked->server, asked->socket_id, "answer", timeout, strlen(timeout), NULL);
  }
  free(asked);
}

static void on_event(void *user_data, roomcast_event *ev) {
  roomcast_server *server = user_data;
  const char *sid = NULL, *name = NULL, *data = NULL;
  size_t len = 0;
  char room[64], reply[160];
  roomcast_event_get_socket(ev, &sid, NULL);
  roomcast_event_get_name(ev, &name);
  roomcast_event_get_data(ev, &data, &len);
  if (strcmp(name, "join") == 0 && nth_string(data, 0, room, sizeof room) == 0) {
    roomcast_server_join(server, sid, room);
    snprintf(reply, sizeof reply, "[\"joined\",\"%s\"]", room);
    roomcast_event_reply(ev, reply, strlen(reply));
  } else if (strcmp(name, "say") == 0 && nth_string(data, 0, room, sizeof room) == 0) {
    roomcast_server_emit(server, room, "said", data, len, NULL);
    roomcast_event_reply(ev, "[true]", 6);
  } else if (strcmp(name, "ask") == 0) {
    struct asked *asked = calloc(1, sizeof *asked);
    if (!asked) return;
    asked->server = server;
    snprintf(asked->socket_id, sizeof asked->socket_id, "%s", sid);
    if (roomcast_server_emit_with_ack(server, sid, "question", "[6,7]", 5, 500, on_answer, asked) != ROOMCAST_RESULT_OK) {
      free(asked);
    }
  } else if (strcmp(name, "blob") == 0) {
    const uint8_t *bytes = NULL;
    size_t size = 0;
    if (roomcast_event_get_binary(ev, 0, &bytes, &size) == ROOMCAST_RESULT_OK) {
      roomcast_server_emit_binary(server, sid, "blob", bytes, size); /* a socket id is its own room */
    }
  } else if (strcmp(name, "rooms") == 0) {
    char *rooms = NULL;
    if (roomcast_server_rooms(server, sid, &rooms) == ROOMCAST_RESULT_OK) {
      snprintf(reply, sizeof reply, "[%s]", rooms);
      roomcast_string_free(rooms);
      roomcast_event_reply(ev, reply, strlen(reply));
    }
  } else if (strcmp(name, "dm") == 0 && nth_string(data, 0, room, sizeof room) == 0) {
    roomcast_server_emit_to_user(server, room, "dm", data, len); /* ["<user>", "text"] to every socket of <user> */
  } else if (strcmp(name, "kick") == 0) {
    roomcast_server_disconnect(server, sid, true);
  } else if (roomcast_event_wants_ack(ev)) {
    roomcast_event_reply(ev, data, len);
  }
}

int main(int argc, char **argv) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  uint16_t port = 0;
  /* Blocked before roomcast starts its threads, which inherit the mask;
   * this thread then waits for them with sigwait. */
  sigset_t signals;
  int sig = 0;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  if (roomcast_server_config_new(&config) != ROOMCAST_RESULT_OK) return 1;
  roomcast_server_config_set_listen(config, argc > 1 ? argv[1] : "127.0.0.1:0");
  roomcast_result r = roomcast_server_new(config, &server);
  roomcast_server_config_free(config);
  if (r != ROOMCAST_RESULT_OK) {
    fprintf(stderr, "roomcast_server_new: %s\n", roomcast_result_message(r));
    return 1;
  }
  roomcast_server_on_connect(server, on_connect, NULL);
  roomcast_server_on_event(server, on_event, server);
  if ((r = roomcast_server_start(server)) != ROOMCAST_RESULT_OK) {
    fprintf(stderr, "start: %s: %s\n", roomcast_result_message(r), roomcast_server_last_error(server));
    roomcast_server_free(server);
    return 1;
  }
  roomcast_server_port(server, &port);
  printf("listening on %u\n", port);
  fflush(stdout);
  sigwait(&signals, &sig);
  roomcast_server_stop(server);
  roomcast_server_free(server);
  return 0;
}
