/* Chat with rooms and presence on libroomcast, with callbacks (they run on
 * roomcast's threads). Clients connect with auth {"name": ...} (JSON-protocol
 * clients: ?name=...), which becomes their user id. Every room has presence:
 * its members get presence:join / presence:leave / presence:update (JSON
 * protocol: user_joined / user_left / presence). Events:
 *   join ["room"]          -> joins, acks ["joined", "room"]
 *   status ["away"]        -> the sender's presence status (online, away, busy), acks [true] or [false]
 *   say  ["room", "text"]  -> everyone in the room gets said ["room", "text"], acks [true]
 *   ask  []                -> the server asks the client "question" [6, 7] and
 *                             sends back "answer" [its ack, or "timeout"]
 *   blob <bytes>           -> the bytes come back as blob <bytes>
 *   rooms []               -> acks [["<socket id>", "room", ...]]
 *   dm   ["user", "text"]  -> every socket of that user gets dm ["user", "text"]
 *   kick []                -> the server closes the connection
 *   who  ["room"] or []    -> the sockets in the room (or all) on every node come back as
 *                             who [{"value": [socket, ...], "missing": [node, ...]}]
 *   nodes []               -> every other node is asked "whoami" (a server event) and the
 *                             replies come back as nodes [{"value": [{"node", "reply":
 *                             [node id, its socket count]}, ...], "missing": [...]}]
 *   anything else with an ack is echoed back.
 * Build: cc chat_server.c $(pkg-config --cflags --libs roomcast)
 * Run:   ./chat_server [host:port]   (prints "listening on <port>"; SIGTERM stops it)
 * Cluster: ROOMCAST_REDIS=redis://127.0.0.1:6379 [ROOMCAST_NODE_TTL_MS=1000]
 *          [ROOMCAST_REQUEST_TIMEOUT_MS=1000] ./chat_server
 *   Servers on the same Redis share rooms, broadcasts and presence; each
 *   prints "node <id>", and "node lost <node> <socket id> <user>" for every
 *   socket of a dead node it cleaned up after. A node that does not answer
 *   who / nodes within the request timeout is listed in "missing". */
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
    roomcast_server_emit(asked->server, asked->socket_id, NULL, "answer", args_json, len, NULL);
  } else {
    const char *timeout = "[\"timeout\"]";
    roomcast_server_emit(asked->server, asked->socket_id, NULL, "answer", timeout, strlen(timeout), NULL);
  }
  free(asked);
}

/* Cluster queries wait for the other nodes, so they cannot run in a callback
 * (BAD_STATE there): each runs on a thread of its own and sends its answer
 * to the asking socket. main waits for the running ones before freeing the server. */
struct query {
  roomcast_server *server;
  char socket_id[64];
  char kind[8]; /* "who" or "nodes" */
  char room[64]; /* who: "" for every socket */
};

static pthread_mutex_t queries_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queries_done = PTHREAD_COND_INITIALIZER;
static int queries_running;

static void *run_query(void *arg) {
  struct query *q = arg;
  char *json = NULL;
  roomcast_result r;
  if (strcmp(q->kind, "who") == 0) {
    r = roomcast_server_fetch_sockets(q->server, *q->room ? q->room : NULL, NULL, &json);
  } else {
    r = roomcast_server_server_emit(q->server, "whoami", "[]", 2, &json);
  }
  /* The answer as one argument, or {"error": "..."}. */
  char fallback[96];
  const char *answer = json;
  if (r != ROOMCAST_RESULT_OK) {
    snprintf(fallback, sizeof fallback, "{\"error\":\"%s\"}", roomcast_result_message(r));
    answer = fallback;
  }
  size_t len = strlen(answer) + 2;
  char *args = malloc(len + 1);
  if (args) {
    snprintf(args, len + 1, "[%s]", answer);
    roomcast_server_emit(q->server, q->socket_id, NULL, q->kind, args, len, NULL);
    free(args);
  }
  roomcast_string_free(json);
  free(q);
  pthread_mutex_lock(&queries_lock);
  queries_running--;
  pthread_cond_signal(&queries_done);
  pthread_mutex_unlock(&queries_lock);
  return NULL;
}

static void start_query(roomcast_server *server, const char *sid, const char *kind, const char *room) {
  struct query *q = calloc(1, sizeof *q);
  pthread_t thread;
  if (!q) return;
  q->server = server;
  snprintf(q->socket_id, sizeof q->socket_id, "%s", sid);
  snprintf(q->kind, sizeof q->kind, "%s", kind);
  snprintf(q->room, sizeof q->room, "%s", room);
  pthread_mutex_lock(&queries_lock);
  queries_running++;
  pthread_mutex_unlock(&queries_lock);
  if (pthread_create(&thread, NULL, run_query, q) != 0) {
    free(q);
    pthread_mutex_lock(&queries_lock);
    queries_running--;
    pthread_mutex_unlock(&queries_lock);
    return;
  }
  pthread_detach(thread);
}

/* This node's id ("" without Redis), set before the server starts. */
static char node_id[96];

/* The server event "whoami" from another node: answer [node id, local sockets]. */
static void on_whoami(void *user_data, roomcast_event *ev) {
  roomcast_stats stats;
  char reply[160];
  roomcast_server_stats(user_data, &stats);
  snprintf(reply, sizeof reply, "[\"%s\",%llu]", node_id, (unsigned long long)stats.sockets);
  roomcast_event_reply(ev, reply, strlen(reply));
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
  } else if (strcmp(name, "status") == 0 && nth_string(data, 0, room, sizeof room) == 0) {
    char meta[128];
    snprintf(meta, sizeof meta, "{\"status\":\"%s\"}", room);
    bool ok = roomcast_server_set_presence(server, sid, meta) == ROOMCAST_RESULT_OK; /* not a status: INVALID_ARGUMENT */
    roomcast_event_reply(ev, ok ? "[true]" : "[false]", ok ? 6 : 7);
  } else if (strcmp(name, "say") == 0 && nth_string(data, 0, room, sizeof room) == 0) {
    roomcast_server_emit(server, room, NULL, "said", data, len, NULL);
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
  } else if (strcmp(name, "who") == 0 || strcmp(name, "nodes") == 0) {
    if (nth_string(data, 0, room, sizeof room) != 0) room[0] = '\0';
    start_query(server, sid, name, room);
  } else if (roomcast_event_wants_ack(ev)) {
    roomcast_event_reply(ev, data, len);
  }
}

/* A socket of a dead cluster node, once, on the node that cleaned up after it. */
static void on_node_lost(void *user_data, roomcast_event *ev) {
  (void)user_data;
  const char *sid = NULL, *user = NULL, *node = NULL;
  roomcast_event_get_socket(ev, &sid, &user);
  roomcast_event_get_name(ev, &node);
  printf("node lost %s %s %s\n", node, sid, *user ? user : "-");
  fflush(stdout);
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
  const char *redis = getenv("ROOMCAST_REDIS"), *ttl = getenv("ROOMCAST_NODE_TTL_MS");
  const char *request_timeout = getenv("ROOMCAST_REQUEST_TIMEOUT_MS");
  if (redis && *redis) {
    /* NULL prefix: "roomcast"; TTL 0: the default (10 s). */
    roomcast_server_config_set_redis(config, redis, NULL, ttl ? (uint32_t)strtoul(ttl, NULL, 10) : 0);
    if (request_timeout) { /* default 5 s */
      roomcast_server_config_set_redis_request_timeout(config, (uint32_t)strtoul(request_timeout, NULL, 10));
    }
  }
  roomcast_result r = roomcast_server_new(config, &server);
  roomcast_server_config_free(config);
  if (r != ROOMCAST_RESULT_OK) {
    fprintf(stderr, "roomcast_server_new: %s\n", roomcast_result_message(r));
    return 1;
  }
  char *node = NULL;
  if (roomcast_server_node_id(server, &node) == ROOMCAST_RESULT_OK) { /* NOT_FOUND without Redis */
    snprintf(node_id, sizeof node_id, "%s", node);
    roomcast_string_free(node);
  }
  roomcast_server_on_connect(server, on_connect, NULL);
  roomcast_server_on_event(server, on_event, server);
  roomcast_server_on_node_lost(server, on_node_lost, NULL);
  roomcast_server_on_server_event(server, "whoami", on_whoami, server);
  roomcast_server_enable_presence(server, NULL); /* every room */
  if ((r = roomcast_server_start(server)) != ROOMCAST_RESULT_OK) {
    fprintf(stderr, "start: %s: %s\n", roomcast_result_message(r), roomcast_server_last_error(server));
    roomcast_server_free(server);
    return 1;
  }
  roomcast_server_port(server, &port);
  printf("listening on %u\n", port);
  if (*node_id) printf("node %s\n", node_id);
  fflush(stdout);
  sigwait(&signals, &sig);
  roomcast_server_stop(server);
  pthread_mutex_lock(&queries_lock); /* cluster queries still running use the server */
  while (queries_running > 0) pthread_cond_wait(&queries_done, &queries_lock);
  pthread_mutex_unlock(&queries_lock);
  roomcast_server_free(server);
  return 0;
}
