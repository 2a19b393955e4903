/* Chat with rooms and presence on libroomcast: the same app as
 * examples/rust/chat.rs, examples/python/chat.py and examples/node/chat.mjs.
 *
 * Clients (socket.io-client, python-socketio) connect with auth {name}, which
 * names their user, and emit `join` {room}, `say` {room, text}, `leave`
 * {room}, `typing` {room}, `status` {status} ("online", "away", "busy") and
 * `who` {room} (acked with its members, [{name, status}] by name); everyone
 * in the room gets `joined`, `said` and `left`, the others `typing` {room,
 * name}, and presence's `presence:join` / `presence:leave` / `presence:update`.
 *
 * One thread: the server's event queue and a signalfd in one poll loop, so
 * that presence queries (which may wait for Redis) run here, not in a callback.
 * JSON through cJSON (Debian: libcjson-dev).
 * Build: cc chat.c $(pkg-config --cflags --libs roomcast libcjson)
 * Run:   ./chat [host:port]   (default 127.0.0.1:3000; prints "listening on <port>";
 *        Ctrl-C / SIGTERM stop it) */
#include <roomcast.h>

#include <cJSON.h>
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* A string field of a JSON object, "" when missing. */
static const char *field(const cJSON *object, const char *key) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(object, key));
  return s ? s : "";
}

/* Send `event` with the one argument `arg` (consumed) to `room` but `except`. */
static void emit(roomcast_server *server, const char *room, const char *except, const char *event, cJSON *arg,
                 int is_volatile) {
  cJSON *args = cJSON_CreateArray();
  cJSON_AddItemToArray(args, arg);
  char *json = cJSON_PrintUnformatted(args);
  if (json) {
    if (is_volatile) roomcast_server_emit_volatile(server, room, except, event, json, strlen(json), NULL);
    else roomcast_server_emit(server, room, except, event, json, strlen(json), NULL);
  }
  cJSON_free(json);
  cJSON_Delete(args);
}

/* {room, name}: what joined, left and typing carry. */
static cJSON *room_and_name(const char *room, const char *name) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "room", room);
  cJSON_AddStringToObject(o, "name", name);
  return o;
}

/* Ack the event, if the client asked for one, with the one value `value` (consumed). */
static void reply(roomcast_event *ev, cJSON *value) {
  if (roomcast_event_wants_ack(ev)) {
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, value);
    char *json = cJSON_PrintUnformatted(args);
    if (json) roomcast_event_reply(ev, json, strlen(json));
    cJSON_free(json);
    cJSON_Delete(args);
  } else {
    cJSON_Delete(value);
  }
}

/* The socket's rooms as cJSON (its own room first), or NULL. */
static cJSON *rooms_of(roomcast_server *server, const char *sid) {
  char *json = NULL;
  if (roomcast_server_rooms(server, sid, &json) != ROOMCAST_RESULT_OK) return NULL;
  cJSON *rooms = cJSON_Parse(json);
  roomcast_string_free(json);
  return rooms;
}

static int in_room(roomcast_server *server, const char *sid, const char *room) {
  cJSON *rooms = rooms_of(server, sid), *r;
  int found = 0;
  cJSON_ArrayForEach(r, rooms) found |= strcmp(cJSON_GetStringValue(r), room) == 0;
  cJSON_Delete(rooms);
  return found;
}

/* Connecting: auth.name, trimmed, at most 32 characters, is the user id. */
static void on_connect(roomcast_event *ev) {
  const char *data = NULL;
  roomcast_event_get_data(ev, &data, NULL);
  cJSON *auth = cJSON_Parse(data);
  const char *name = field(auth, "name");
  size_t end = strlen(name);
  while (isspace((unsigned char)*name)) name++, end--;
  while (end > 0 && isspace((unsigned char)name[end - 1])) end--;
  char user[32 * 4 + 1]; /* 32 UTF-8 characters */
  size_t len = 0;
  for (size_t chars = 0; len < end && len < sizeof user - 1; len++) {
    if (((unsigned char)name[len] & 0xC0) != 0x80 && ++chars > 32) break; /* the 33rd starts here */
  }
  memcpy(user, name, len);
  user[len] = '\0';
  if (len > 0) roomcast_event_accept(ev, user);
  else roomcast_event_refuse(ev, "pick a name first");
  cJSON_Delete(auth);
}

static int by_user_id(const void *a, const void *b) {
  return strcmp(field(*(cJSON *const *)a, "userId"), field(*(cJSON *const *)b, "userId"));
}

/* who: the room's members (every node's), [{name, status}] by name. */
static cJSON *who(roomcast_server *server, const char *room) {
  char *json = NULL;
  cJSON *answer = cJSON_CreateArray();
  if (roomcast_server_presence(server, room, &json) != ROOMCAST_RESULT_OK) return answer;
  cJSON *members = cJSON_Parse(json);
  roomcast_string_free(json);
  int n = cJSON_GetArraySize(members);
  cJSON **sorted = calloc((size_t)n + 1, sizeof *sorted);
  for (int i = 0; sorted && i < n; i++) sorted[i] = cJSON_GetArrayItem(members, i);
  if (sorted) qsort(sorted, (size_t)n, sizeof *sorted, by_user_id);
  for (int i = 0; sorted && i < n; i++) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", field(sorted[i], "userId"));
    cJSON_AddStringToObject(m, "status", field(cJSON_GetObjectItemCaseSensitive(sorted[i], "meta"), "status"));
    cJSON_AddItemToArray(answer, m);
  }
  free(sorted);
  cJSON_Delete(members);
  return answer;
}

static void on_message(roomcast_server *server, roomcast_event *ev) {
  const char *sid = NULL, *name = NULL, *event = NULL, *data = NULL;
  roomcast_event_get_socket(ev, &sid, &name);
  roomcast_event_get_name(ev, &event);
  roomcast_event_get_data(ev, &data, NULL);
  cJSON *args = cJSON_Parse(data);
  const cJSON *arg = cJSON_GetArrayItem(args, 0);
  const char *room = field(arg, "room");
  if (strcmp(event, "join") == 0) {
    if (roomcast_server_join(server, sid, room) == ROOMCAST_RESULT_OK) {
      emit(server, room, sid, "joined", room_and_name(room, name), 0);
      /* Not the socket's own room, nor its user's ("user:<name>"). */
      cJSON *rooms = rooms_of(server, sid), *named = cJSON_CreateArray(), *r;
      cJSON_ArrayForEach(r, rooms) {
        const char *s = cJSON_GetStringValue(r);
        if (strcmp(s, sid) != 0 && strncmp(s, "user:", 5) != 0) cJSON_AddItemToArray(named, cJSON_CreateString(s));
      }
      cJSON_Delete(rooms);
      cJSON *ok = cJSON_CreateObject();
      cJSON_AddTrueToObject(ok, "ok");
      cJSON_AddItemToObject(ok, "rooms", named);
      reply(ev, ok);
    } else {
      cJSON *refused = cJSON_CreateObject();
      cJSON_AddFalseToObject(refused, "ok");
      cJSON_AddStringToObject(refused, "error", roomcast_server_last_error(server));
      reply(ev, refused);
    }
  } else if (strcmp(event, "say") == 0) {
    int ok = in_room(server, sid, room);
    if (ok) {
      cJSON *said = room_and_name(room, name);
      const cJSON *text = cJSON_GetObjectItemCaseSensitive(arg, "text");
      cJSON_AddItemToObject(said, "text", text ? cJSON_Duplicate(text, 1) : cJSON_CreateNull());
      emit(server, room, NULL, "said", said, 0);
    }
    reply(ev, cJSON_CreateBool(ok));
  } else if (strcmp(event, "leave") == 0) {
    roomcast_server_leave(server, sid, room);
    emit(server, room, NULL, "left", room_and_name(room, name), 0);
  } else if (strcmp(event, "typing") == 0) {
    if (in_room(server, sid, room)) emit(server, room, sid, "typing", room_and_name(room, name), 1);
  } else if (strcmp(event, "status") == 0) {
    /* Refused unless online, away or busy. */
    cJSON *meta = cJSON_CreateObject();
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(arg, "status");
    cJSON_AddItemToObject(meta, "status", status ? cJSON_Duplicate(status, 1) : cJSON_CreateNull());
    char *json = cJSON_PrintUnformatted(meta);
    reply(ev, cJSON_CreateBool(json && roomcast_server_set_presence(server, sid, json) == ROOMCAST_RESULT_OK));
    cJSON_free(json);
    cJSON_Delete(meta);
  } else if (strcmp(event, "who") == 0) {
    reply(ev, who(server, room));
  }
  cJSON_Delete(args);
}

int main(int argc, char **argv) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  uint16_t port = 0;
  int queue_fd = -1;
  /* Blocked before roomcast starts its threads (they inherit the mask), so
   * the signals only reach the signalfd. */
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  if (roomcast_server_config_new(&config) != ROOMCAST_RESULT_OK) return 1;
  roomcast_server_config_set_listen(config, argc > 1 ? argv[1] : "127.0.0.1:3000");
  roomcast_server_config_set_event_queue(config, true);
  roomcast_result r = roomcast_server_new(config, &server);
  roomcast_server_config_free(config);
  if (r == ROOMCAST_RESULT_OK) r = roomcast_server_enable_presence(server, NULL);
  if (r != ROOMCAST_RESULT_OK || roomcast_server_start(server) != ROOMCAST_RESULT_OK) {
    fprintf(stderr, "cannot start: %s\n", roomcast_server_last_error(server));
    roomcast_server_free(server);
    return 1;
  }
  roomcast_server_port(server, &port);
  roomcast_server_event_fd(server, &queue_fd);
  struct pollfd fds[2] = {{.fd = queue_fd, .events = POLLIN}, {.fd = signalfd(-1, &signals, 0), .events = POLLIN}};
  printf("listening on %u\n", port);
  fflush(stdout);
  while (poll(fds, 2, -1) >= 0 && !(fds[1].revents & POLLIN)) {
    roomcast_event *ev = NULL;
    while (roomcast_server_next_event(server, &ev) == ROOMCAST_RESULT_OK) {
      if (roomcast_event_get_type(ev) == ROOMCAST_EVENT_CONNECT) on_connect(ev);
      else if (roomcast_event_get_type(ev) == ROOMCAST_EVENT_MESSAGE) on_message(server, ev);
      roomcast_event_free(ev);
    }
  }
  roomcast_server_stop(server);
  roomcast_server_free(server);
  close(fds[1].fd);
  return 0;
}
