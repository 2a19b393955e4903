/* The C API's contract: results for misuse, NULL arguments, errors with
 * details, repeated start/stop, the event queue's fd, the Redis settings,
 * presence and the cluster queries without Redis (with one C client of its
 * own). Built with -Wall -Wextra
 * -Werror -pedantic, run under ASan+UBSan and valgrind by make test-c. */
#include <roomcast.h>

#include <poll.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                     \
    }                                                                 \
  } while (0)

static roomcast_server *make(const char *listen, bool queue) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  CHECK(roomcast_server_config_new(&config) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_listen(config, listen) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_event_queue(config, queue) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_OK);
  roomcast_server_config_free(config);
  return server;
}

/* Start `server` and connect a JSON-protocol client of it, joined to `room`;
 * `*sid` gets the client's id (free with roomcast_string_free). */
static roomcast_client *start_with_client(roomcast_server *server, const char *room, char **sid) {
  CHECK(roomcast_server_start(server) == ROOMCAST_RESULT_OK);
  uint16_t port = 0;
  CHECK(roomcast_server_port(server, &port) == ROOMCAST_RESULT_OK);
  char url[64];
  snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", port);
  roomcast_client *client = NULL;
  CHECK(roomcast_client_new(url, NULL, &client) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_client_connect(client) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_client_join(client, room) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_client_id(client, sid) == ROOMCAST_RESULT_OK && *sid);
  return client;
}

static void on_event(void *user_data, roomcast_event *ev) {
  (void)user_data;
  (void)ev;
}

/* Every connection is user "ada". */
static void accept_ada(void *user_data, roomcast_event *ev) {
  (void)user_data;
  if (roomcast_event_get_type(ev) == ROOMCAST_EVENT_CONNECT) roomcast_event_accept(ev, "ada");
}

/* Presence without Redis, on a server that is not started and on one with
 * a client in a room with presence. */
static void presence(void) {
  roomcast_server *server = make("127.0.0.1:0", false);
  char *json = NULL;
  size_t count = 99;
  bool online = true;
  CHECK(roomcast_server_enable_presence(NULL, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_enable_presence(server, "\xff") == ROOMCAST_RESULT_INVALID_UTF8);
  CHECK(roomcast_server_enable_presence(server, "lobby") == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_enable_presence(server, NULL) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_presence(server, NULL, &json) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_presence(server, "lobby", NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_presence(server, "lobby", &json) == ROOMCAST_RESULT_OK && strcmp(json, "[]") == 0);
  roomcast_string_free(json);
  CHECK(roomcast_server_presence_count(server, "lobby", NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_presence_count(server, "lobby", &count) == ROOMCAST_RESULT_OK && count == 0);
  CHECK(roomcast_server_is_online(server, NULL, &online) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_is_online(server, "ada", &online) == ROOMCAST_RESULT_OK && !online);
  CHECK(roomcast_server_online_users(server, "[\"ada\",\"bob\"]", NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_online_users(server, "{not json", &json) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(roomcast_server_last_error(server), "array of strings") != NULL);
  CHECK(roomcast_server_online_users(server, "[1]", &json) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_online_users(server, "[]", &json) == ROOMCAST_RESULT_OK && strcmp(json, "{}") == 0);
  roomcast_string_free(json);
  CHECK(roomcast_server_online_users(server, "[\"ada\"]", &json) == ROOMCAST_RESULT_OK);
  CHECK(json && strcmp(json, "{\"ada\":false}") == 0);
  roomcast_string_free(json);
  CHECK(roomcast_server_set_presence(server, "nobody", "{}") == ROOMCAST_RESULT_NOT_FOUND);
  CHECK(roomcast_server_set_presence(server, "nobody", "{not json") == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_set_presence(server, "nobody", NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_presence_meta(server, "nobody", &json) == ROOMCAST_RESULT_NOT_FOUND);
  json = NULL;
  CHECK(roomcast_server_node_id(server, &json) == ROOMCAST_RESULT_NOT_FOUND && json == NULL);
  CHECK(strstr(roomcast_server_last_error(server), "cluster") != NULL);
  CHECK(roomcast_server_node_id(server, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_on_node_lost(server, on_event, NULL) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_on_node_lost(NULL, on_event, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);

  /* A client in "lobby": a member with a connection, online, with metadata. */
  CHECK(roomcast_server_on_connect(server, accept_ada, NULL) == ROOMCAST_RESULT_OK);
  char *sid = NULL;
  roomcast_client *client = start_with_client(server, "lobby", &sid);
  CHECK(roomcast_server_is_online(server, "ada", &online) == ROOMCAST_RESULT_OK && online);
  CHECK(roomcast_server_online_users(server, "[\"ada\",\"bob\"]", &json) == ROOMCAST_RESULT_OK);
  CHECK(json && strstr(json, "\"ada\":true") && strstr(json, "\"bob\":false"));
  roomcast_string_free(json);
  CHECK(roomcast_server_presence_count(server, "lobby", &count) == ROOMCAST_RESULT_OK && count == 1);
  CHECK(roomcast_server_presence(server, "lobby", &json) == ROOMCAST_RESULT_OK);
  CHECK(json && strstr(json, "\"userId\":\"ada\"") && strstr(json, "\"connections\":1"));
  roomcast_string_free(json);
  if (sid) {
    CHECK(roomcast_server_presence_meta(server, sid, &json) == ROOMCAST_RESULT_OK);
    CHECK(json && strcmp(json, "{\"status\":\"online\"}") == 0);
    roomcast_string_free(json);
    CHECK(roomcast_server_set_presence(server, sid, "{\"status\":\"asleep\"}") == ROOMCAST_RESULT_INVALID_ARGUMENT);
    CHECK(strstr(roomcast_server_last_error(server), "status") != NULL);
    CHECK(roomcast_server_set_presence(server, sid, "[1]") == ROOMCAST_RESULT_INVALID_ARGUMENT);
    CHECK(roomcast_server_set_presence(server, sid, "{\"status\":\"away\",\"mood\":\"ok\"}") == ROOMCAST_RESULT_OK);
    CHECK(roomcast_server_presence_meta(server, sid, &json) == ROOMCAST_RESULT_OK);
    CHECK(json && strstr(json, "\"away\"") && strstr(json, "\"mood\""));
    roomcast_string_free(json);
    CHECK(roomcast_server_presence(server, "lobby", &json) == ROOMCAST_RESULT_OK);
    CHECK(json && strstr(json, "\"status\":\"away\""));
    roomcast_string_free(json);
  }
  roomcast_string_free(sid);
  roomcast_stats stats;
  CHECK(roomcast_server_stats(server, &stats) == ROOMCAST_RESULT_OK && stats.sockets == 1);
  CHECK(stats.cluster_messages_in == 0 && stats.cluster_messages_out == 0 && stats.cluster_errors == 0);
  CHECK(stats.cluster_request_timeouts == 0);
  CHECK(roomcast_client_close(client) == ROOMCAST_RESULT_OK);
  roomcast_client_free(client);
  roomcast_server_free(server);

  /* An event-queue server delivers node-lost events through its queue. */
  server = make("127.0.0.1:0", true);
  CHECK(roomcast_server_on_node_lost(server, on_event, NULL) == ROOMCAST_RESULT_BAD_STATE);
  roomcast_server_free(server);
}

/* What a cluster query returned from a CONNECT callback (it waits: BAD_STATE). */
static roomcast_result query_in_callback = ROOMCAST_RESULT_OK;

/* Accept as "ada", after trying a cluster query from the callback. */
static void accept_ada_query(void *user_data, roomcast_event *ev) {
  char *json = NULL;
  if (roomcast_event_get_type(ev) != ROOMCAST_EVENT_CONNECT) return;
  query_in_callback = roomcast_server_fetch_sockets(user_data, NULL, NULL, &json);
  roomcast_string_free(json); /* NULL unless it wrongly succeeded */
  roomcast_event_accept(ev, "ada");
}

/* Cluster queries without Redis: this server's own answers, always
 * complete; NULL arguments, bad JSON, server events. */
static void cluster(void) {
  roomcast_server *server = make("127.0.0.1:0", false);
  char *json = NULL, *missing = NULL;
  size_t count = 99;
  const char *empty = "{\"value\":[],\"missing\":[]}";

  /* NULL arguments and bad strings. */
  CHECK(roomcast_server_fetch_sockets(NULL, NULL, NULL, &json) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_fetch_sockets(server, NULL, NULL, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_fetch_sockets(server, "\xff", NULL, &json) == ROOMCAST_RESULT_INVALID_UTF8);
  CHECK(roomcast_server_fetch_sockets(server, NULL, "\xff", &json) == ROOMCAST_RESULT_INVALID_UTF8);
  CHECK(roomcast_server_sockets_join(server, NULL, NULL, NULL, &count, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_sockets_join(server, NULL, NULL, "r", NULL, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_sockets_leave(NULL, NULL, NULL, "r", &count, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_sockets_leave(server, NULL, NULL, NULL, &count, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_disconnect_sockets(server, NULL, NULL, false, NULL, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_rooms_everywhere(server, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_named_rooms(NULL, &json) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_socket_count_everywhere(server, NULL, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_nodes(server, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_nodes(NULL, &json) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_emit_with_ack_everywhere(server, NULL, NULL, NULL, "[]", 2, 100, &json) ==
        ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_emit_with_ack_everywhere(server, NULL, NULL, "q", NULL, 2, 100, &json) ==
        ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_emit_with_ack_everywhere(server, NULL, NULL, "q", "[]", 2, 100, NULL) ==
        ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_emit_with_ack_everywhere(server, NULL, NULL, "q", "{not json", 9, 100, &json) ==
        ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(roomcast_server_last_error(server), "JSON") != NULL);
  CHECK(roomcast_server_server_emit(server, "e", "{\"a\":1}", 7, &json) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(roomcast_server_last_error(server), "array") != NULL);
  CHECK(roomcast_server_server_emit(server, NULL, "[]", 2, &json) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_server_emit(server, "e", "[]", 2, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_on_server_event(NULL, "e", on_event, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_on_server_event(server, NULL, on_event, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_on_server_event(server, "\xff", on_event, NULL) == ROOMCAST_RESULT_INVALID_UTF8);
  CHECK(roomcast_server_on_server_event(server, "e", on_event, NULL) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_on_server_event(server, "e", NULL, NULL) == ROOMCAST_RESULT_OK);

  /* Not started, nobody connected: empty and complete. */
  CHECK(roomcast_server_fetch_sockets(server, NULL, NULL, &json) == ROOMCAST_RESULT_OK && strcmp(json, empty) == 0);
  roomcast_string_free(json);
  CHECK(roomcast_server_nodes(server, &json) == ROOMCAST_RESULT_OK && strcmp(json, "[]") == 0);
  roomcast_string_free(json);
  CHECK(roomcast_server_server_emit(server, "e", "[1]", 3, &json) == ROOMCAST_RESULT_OK && strcmp(json, empty) == 0);
  roomcast_string_free(json);
  CHECK(roomcast_server_rooms_everywhere(server, &json) == ROOMCAST_RESULT_OK && strcmp(json, empty) == 0);
  roomcast_string_free(json);

  /* One client, "ada", in "lobby". */
  CHECK(roomcast_server_on_connect(server, accept_ada_query, server) == ROOMCAST_RESULT_OK);
  char *sid = NULL;
  roomcast_client *client = start_with_client(server, "lobby", &sid);
  CHECK(query_in_callback == ROOMCAST_RESULT_BAD_STATE);

  CHECK(roomcast_server_fetch_sockets(server, "lobby", NULL, &json) == ROOMCAST_RESULT_OK);
  CHECK(json && sid && strstr(json, sid) && strstr(json, "\"userId\":\"ada\"") && strstr(json, "\"node\":null"));
  CHECK(json && strstr(json, "\"handshake\":{") && strstr(json, "\"path\":\"/ws\""));
  CHECK(json && strstr(json, "\"missing\":[]"));
  roomcast_string_free(json);
  CHECK(roomcast_server_fetch_sockets(server, NULL, "lobby", &json) == ROOMCAST_RESULT_OK && strcmp(json, empty) == 0);
  roomcast_string_free(json);
  CHECK(roomcast_server_fetch_sockets(server, "elsewhere", NULL, &json) == ROOMCAST_RESULT_OK);
  CHECK(json && strcmp(json, empty) == 0);
  roomcast_string_free(json);

  CHECK(roomcast_server_sockets_join(server, NULL, NULL, "extra", &count, &missing) == ROOMCAST_RESULT_OK);
  CHECK(count == 1 && missing && strcmp(missing, "[]") == 0);
  roomcast_string_free(missing);
  CHECK(roomcast_server_sockets_join(server, NULL, "lobby", "never", &count, NULL) == ROOMCAST_RESULT_OK && count == 0);
  CHECK(roomcast_server_rooms_everywhere(server, &json) == ROOMCAST_RESULT_OK);
  CHECK(json && strstr(json, "\"extra\"") && strstr(json, "\"lobby\"") && !strstr(json, "never"));
  CHECK(json && sid && !strstr(json, sid)); /* not the sockets' own rooms */
  roomcast_string_free(json);
  CHECK(roomcast_server_named_rooms(server, &json) == ROOMCAST_RESULT_OK && strstr(json, "\"extra\""));
  roomcast_string_free(json);
  CHECK(roomcast_server_sockets_leave(server, "extra", NULL, "extra", &count, NULL) == ROOMCAST_RESULT_OK && count == 1);
  CHECK(roomcast_server_named_rooms(server, &json) == ROOMCAST_RESULT_OK && !strstr(json, "\"extra\""));
  roomcast_string_free(json);
  count = 99;
  CHECK(roomcast_server_socket_count_everywhere(server, &count, &missing) == ROOMCAST_RESULT_OK && count == 1);
  CHECK(missing && strcmp(missing, "[]") == 0);
  roomcast_string_free(missing);

  /* The JSON-protocol C client does not ack server events: a timeout per socket. */
  CHECK(roomcast_server_emit_with_ack_everywhere(server, "lobby", NULL, "q", "[1]", 3, 100, &json) ==
        ROOMCAST_RESULT_OK);
  CHECK(json && sid && strstr(json, sid) && strstr(json, "\"error\":\"ERR_TIMEOUT\"") && strstr(json, "\"missing\":[]"));
  roomcast_string_free(json);
  CHECK(roomcast_server_emit_with_ack_everywhere(server, "nobody", NULL, "q", "[]", 2, 100, &json) ==
        ROOMCAST_RESULT_OK);
  CHECK(json && strcmp(json, empty) == 0);
  roomcast_string_free(json);

  roomcast_stats stats;
  CHECK(roomcast_server_stats(server, &stats) == ROOMCAST_RESULT_OK && stats.cluster_request_timeouts == 0);
  CHECK(roomcast_server_disconnect_sockets(server, NULL, "lobby", false, &count, NULL) == ROOMCAST_RESULT_OK);
  CHECK(count == 0);
  CHECK(roomcast_server_disconnect_sockets(server, "lobby", NULL, true, &count, &missing) == ROOMCAST_RESULT_OK);
  CHECK(count == 1 && missing && strcmp(missing, "[]") == 0);
  roomcast_string_free(missing);
  roomcast_string_free(sid);
  roomcast_client_close(client); /* the server closed it already */
  roomcast_client_free(client);
  roomcast_server_free(server);

  /* An event-queue server takes server events through its queue: no callback. */
  server = make("127.0.0.1:0", true);
  CHECK(roomcast_server_on_server_event(server, "e", on_event, NULL) == ROOMCAST_RESULT_BAD_STATE);
  CHECK(strstr(roomcast_server_last_error(server), "queue") != NULL);
  CHECK(roomcast_server_on_server_event(server, "e", NULL, NULL) == ROOMCAST_RESULT_OK);
  roomcast_server_free(server);
}

/* Redis settings: checked when the server is made; its node id. */
static void redis(void) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  char *node = NULL;
  CHECK(roomcast_server_config_new(&config) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_redis(NULL, "redis://127.0.0.1:1", NULL, 0) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_redis(config, NULL, NULL, 0) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_redis(config, "redis://\xff", NULL, 0) == ROOMCAST_RESULT_INVALID_UTF8);
  CHECK(roomcast_server_config_set_redis(config, "not a url", NULL, 0) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_CONFIG && server == NULL);
  CHECK(roomcast_server_config_set_redis(config, "redis://127.0.0.1:1", "app", 100) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_CONFIG && server == NULL); /* TTL < 300 ms */
  CHECK(roomcast_server_config_set_redis(config, "redis://127.0.0.1:1", "app", 1000) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_redis_request_timeout(NULL, 1000) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_redis_request_timeout(config, 0) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_config_set_redis_request_timeout(config, 800) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_OK);
  roomcast_server_config_free(config);
  /* Made, not started (nothing listens on port 1): it has a node id already. */
  CHECK(roomcast_server_node_id(server, &node) == ROOMCAST_RESULT_OK && node && strlen(node) > 0);
  roomcast_string_free(node);
  CHECK(roomcast_server_on_node_lost(server, on_event, NULL) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_on_server_event(server, "e", on_event, NULL) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_enable_presence(server, NULL) == ROOMCAST_RESULT_OK);
  roomcast_server_free(server);
}

/* Connection state recovery: its setting, and the recovered flags of a
 * first connection (not recovered) and of an event that is no CONNECTED. */
static atomic_bool first_connected_recovered = true;
static atomic_int connected_events;

static void note_recovered(void *user_data, roomcast_event *ev) {
  (void)user_data;
  bool recovered = true;
  CHECK(roomcast_event_is_recovered(ev, &recovered) == ROOMCAST_RESULT_OK);
  if (roomcast_event_get_type(ev) == ROOMCAST_EVENT_CONNECTED) {
    first_connected_recovered = recovered;
    connected_events++;
  } else {
    CHECK(!recovered);
  }
}

static void recovery(void) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  CHECK(roomcast_server_config_new(&config) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_recovery(NULL, 0, true, 0) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_recovery(config, 0, true, 0) == ROOMCAST_RESULT_OK); /* the defaults */
  CHECK(roomcast_server_config_set_recovery(config, 5000, false, 100) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_OK);
  roomcast_server_config_free(config);
  CHECK(roomcast_server_on_connect(server, note_recovered, NULL) == ROOMCAST_RESULT_OK);
  char *sid = NULL;
  roomcast_client *client = start_with_client(server, "r", &sid);
  bool recovered = true;
  CHECK(roomcast_client_recovered(NULL, &recovered) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_client_recovered(client, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_client_recovered(client, &recovered) == ROOMCAST_RESULT_OK && !recovered);
  /* CONNECTED comes on a runtime thread, after the client was told. */
  for (int i = 0; i < 1000 && atomic_load(&connected_events) == 0; i++) usleep(1000);
  CHECK(atomic_load(&connected_events) == 1 && !atomic_load(&first_connected_recovered));
  CHECK(roomcast_event_is_recovered(NULL, &recovered) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_client_close(client) == ROOMCAST_RESULT_OK);
  roomcast_client_free(client);
  roomcast_string_free(sid);
  roomcast_server_free(server);
}

/* Backpressure: the overflow setting, buffered amounts and one DRAINED
 * event per request, through the callback; the client's retry setting. */
static atomic_int drained_events;

static void note_drained(void *user_data, roomcast_event *ev) {
  (void)user_data;
  const char *sid = NULL;
  CHECK(roomcast_event_get_type(ev) == ROOMCAST_EVENT_DRAINED);
  CHECK(roomcast_event_get_socket(ev, &sid, NULL) == ROOMCAST_RESULT_OK && sid != NULL && sid[0] != 0);
  drained_events++;
}

static void backpressure(void) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  CHECK(roomcast_server_config_new(&config) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_overflow(NULL, ROOMCAST_OVERFLOW_DROP) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_overflow(config, 42) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_config_set_overflow(config, ROOMCAST_OVERFLOW_CLOSE) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_OK);
  roomcast_server_config_free(config);
  CHECK(roomcast_server_on_drained(server, note_drained, NULL) == ROOMCAST_RESULT_OK);
  char *sid = NULL;
  roomcast_client *client = start_with_client(server, "r", &sid);
  size_t amount = 1;
  CHECK(roomcast_server_buffered_amount(NULL, sid, &amount) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_buffered_amount(server, NULL, &amount) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_buffered_amount(server, sid, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_buffered_amount(server, "nobody", &amount) == ROOMCAST_RESULT_NOT_FOUND);
  CHECK(roomcast_server_buffered_amount(server, sid, &amount) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_notify_drained(NULL, sid) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_notify_drained(server, "nobody") == ROOMCAST_RESULT_NOT_FOUND);
  CHECK(roomcast_server_notify_drained(server, sid) == ROOMCAST_RESULT_OK);
  for (int i = 0; i < 5000 && atomic_load(&drained_events) == 0; i++) usleep(1000);
  CHECK(atomic_load(&drained_events) == 1);
  size_t sent = 0;
  CHECK(roomcast_server_emit_volatile(NULL, "r", NULL, "tick", "[1]", 3, &sent) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_emit_volatile(server, "r", NULL, "tick", "[1", 2, &sent) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_emit_volatile(server, "r", NULL, "tick", "[1]", 3, &sent) == ROOMCAST_RESULT_OK && sent == 1);
  /* The sender left out, as socket.to(room) does; a room of none is no error. */
  CHECK(roomcast_server_emit(server, "r", sid, "tick", "[2]", 3, &sent) == ROOMCAST_RESULT_OK && sent == 0);
  CHECK(roomcast_server_emit_volatile(server, "r", "elsewhere", "tick", "[3]", 3, &sent) == ROOMCAST_RESULT_OK && sent == 1);
  /* At-least-once client settings (used by the next connect). */
  CHECK(roomcast_client_set_retries(NULL, 3, 1000) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_client_set_retries(client, 3, 0) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_client_set_retries(client, 3, 1000) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_client_close(client) == ROOMCAST_RESULT_OK);
  roomcast_client_free(client);
  roomcast_string_free(sid);
  roomcast_server_free(server);
}

/* Metrics: the path setting, the Prometheus text and the counters of stats. */
static void metrics(void) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  CHECK(roomcast_server_config_new(&config) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_metrics_path(NULL, "/metrics") == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_metrics_path(config, "/metrics") == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_OK);
  roomcast_server_config_free(config);
  char *sid = NULL;
  roomcast_client *client = start_with_client(server, "r", &sid);
  char *text = NULL;
  CHECK(roomcast_server_metrics(NULL, &text) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_metrics(server, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_metrics(server, &text) == ROOMCAST_RESULT_OK && text != NULL);
  CHECK(strstr(text, "\nroomcast_connections 1\n") != NULL);
  CHECK(strstr(text, "roomcast_sockets{namespace=\"/\"} 1") != NULL && strstr(text, "# EOF") != NULL);
  CHECK(strstr(text, "\nroomcast_recovery_sessions{namespace=\"/\"} 0\n") != NULL);
  /* The runtime's tasks: the accept loop and the session at least. */
  const char *tasks = strstr(text, "\nroomcast_runtime_tasks ");
  CHECK(tasks != NULL && strtol(tasks + strlen("\nroomcast_runtime_tasks "), NULL, 10) >= 2);
  roomcast_string_free(text);
  roomcast_stats stats;
  CHECK(roomcast_server_stats(server, &stats) == ROOMCAST_RESULT_OK && stats.connections == 1);
  CHECK(stats.ack_timeouts == 0 && stats.recovery_hits == 0 && stats.recovery_misses == 0);
  CHECK(stats.retries_deduplicated == 0 && stats.slow_consumer_closes == 0 && stats.refused_connections == 0);
  CHECK(roomcast_client_close(client) == ROOMCAST_RESULT_OK);
  roomcast_client_free(client);
  roomcast_string_free(sid);
  roomcast_server_free(server);
}

/* The per-address connection rate: the second connection is refused (429),
 * the first goes on; a rate that is not positive is a config error. */
static void connection_rate(void) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  CHECK(roomcast_server_config_new(&config) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_connection_rate(NULL, 1.0, 0) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_connection_rate(config, 0.0, 0) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_CONFIG && server == NULL);
  CHECK(roomcast_server_config_set_connection_rate(config, 0.01, 1) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &server) == ROOMCAST_RESULT_OK);
  roomcast_server_config_free(config);
  char *sid = NULL;
  roomcast_client *first = start_with_client(server, "r", &sid);
  uint16_t port = 0;
  CHECK(roomcast_server_port(server, &port) == ROOMCAST_RESULT_OK);
  char url[64];
  snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", port);
  roomcast_client *second = NULL;
  CHECK(roomcast_client_new(url, NULL, &second) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_client_connect(second) == ROOMCAST_RESULT_RATE_LIMITED);
  CHECK(strstr(roomcast_client_last_error(second), "429") != NULL);
  roomcast_client_free(second);
  roomcast_stats stats;
  CHECK(roomcast_server_stats(server, &stats) == ROOMCAST_RESULT_OK && stats.refused_connections == 1);
  CHECK(roomcast_client_emit(first, "still", "1", 1) == ROOMCAST_RESULT_OK);
  size_t sent = 0;
  CHECK(roomcast_server_emit(server, "r", NULL, "news", "[1]", 3, &sent) == ROOMCAST_RESULT_OK && sent == 1);
  roomcast_client_free(first);
  roomcast_string_free(sid);
  roomcast_server_free(server);
}

/* Use after stop and after close: every call answers with a result, none
 * crashes; the handles are freed once. */
static void after_stop(void) {
  roomcast_server *server = make("127.0.0.1:0", false);
  char *sid = NULL;
  roomcast_client *client = start_with_client(server, "r", &sid);
  CHECK(roomcast_server_stop(server) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_stop(server) == ROOMCAST_RESULT_OK); /* twice: nothing more to do */
  CHECK(roomcast_server_start(server) == ROOMCAST_RESULT_BAD_STATE);
  size_t sent = 99;
  CHECK(roomcast_server_emit(server, "r", NULL, "news", "[1]", 3, &sent) == ROOMCAST_RESULT_OK && sent == 0);
  CHECK(roomcast_server_join(server, sid, "other") == ROOMCAST_RESULT_NOT_FOUND);
  roomcast_stats stats;
  CHECK(roomcast_server_stats(server, &stats) == ROOMCAST_RESULT_OK && stats.connections == 0);
  CHECK(roomcast_client_close(client) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_client_close(client) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_client_join(client, "r") == ROOMCAST_RESULT_BAD_STATE);
  CHECK(roomcast_client_emit(client, "late", "1", 1) == ROOMCAST_RESULT_BAD_STATE);
  CHECK(strlen(roomcast_client_last_error(client)) > 0);
  roomcast_client_free(client);
  roomcast_string_free(sid);
  roomcast_server_free(server);
}

int main(void) {
  /* Results and messages. */
  CHECK(strcmp(roomcast_result_message(ROOMCAST_RESULT_OK), "ok") == 0);
  CHECK(strcmp(roomcast_result_message(ROOMCAST_RESULT_TIMEOUT), "timed out") == 0);
  CHECK(strcmp(roomcast_result_message(9999), "unknown result") == 0);
  CHECK(strcmp(roomcast_version(), ROOMCAST_VERSION) == 0);

  /* NULL arguments. */
  roomcast_server_config *config = NULL;
  CHECK(roomcast_server_config_new(NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_listen(NULL, "x") == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_new(&config) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_listen(config, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_config_set_ping(config, 0, 10) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_config_set_max_connections(config, 0, 1) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_config_set_outbound_queue(config, 8, 0) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_config_set_max_connections(config, 100, 10) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_outbound_queue(config, 64, 1 << 20) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_max_payload(config, 4096) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_add_allowed_origin(config, "https://app.example") == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_jwt_secret(config, "secret") == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_config_set_listen(config, "\xff\xfe") == ROOMCAST_RESULT_INVALID_UTF8);
  CHECK(roomcast_server_new(NULL, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_new(config, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  /* Every setting above builds a server that starts. */
  roomcast_server *configured = NULL;
  CHECK(roomcast_server_config_set_listen(config, "127.0.0.1:0") == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_new(config, &configured) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_start(configured) == ROOMCAST_RESULT_OK);
  roomcast_server_free(configured);
  roomcast_server_config_free(config);
  roomcast_server_config_free(NULL);
  roomcast_server_free(NULL);
  roomcast_event_free(NULL);
  roomcast_string_free(NULL);
  CHECK(roomcast_server_start(NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_event_get_type(NULL) == 0);
  CHECK(strcmp(roomcast_server_last_error(NULL), "NULL server") == 0);

  /* Start and stop repeatedly; a busy port is an I/O error with a detail. */
  for (int i = 0; i < 20; i++) {
    roomcast_server *server = make("127.0.0.1:0", i % 2 == 0);
    uint16_t port = 0;
    CHECK(roomcast_server_port(server, &port) == ROOMCAST_RESULT_BAD_STATE);
    CHECK(roomcast_server_start(server) == ROOMCAST_RESULT_OK);
    CHECK(roomcast_server_port(server, &port) == ROOMCAST_RESULT_OK && port != 0);
    CHECK(roomcast_server_start(server) == ROOMCAST_RESULT_BAD_STATE);
    if (i == 0) {
      char addr[32];
      snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
      roomcast_server *busy = make(addr, false);
      CHECK(roomcast_server_start(busy) == ROOMCAST_RESULT_IO);
      CHECK(strlen(roomcast_server_last_error(busy)) > 0);
      roomcast_server_free(busy);
    }
    CHECK(roomcast_server_stop(server) == ROOMCAST_RESULT_OK);
    roomcast_server_free(server);
  }

  /* Operations on sockets that do not exist, bad JSON, modes. */
  roomcast_server *server = make("127.0.0.1:0", false);
  CHECK(roomcast_server_start(server) == ROOMCAST_RESULT_OK);
  CHECK(roomcast_server_join(server, "nobody", "room") == ROOMCAST_RESULT_NOT_FOUND);
  CHECK(strstr(roomcast_server_last_error(server), "nobody") != NULL);
  size_t sent = 99;
  CHECK(roomcast_server_emit(server, NULL, NULL, "news", "[1,2]", 5, &sent) == ROOMCAST_RESULT_OK && sent == 0);
  CHECK(roomcast_server_emit(server, "room", NULL, "news", "{not json", 9, NULL) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_emit(server, "room", NULL, "news", "{\"a\":1}", 7, NULL) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_emit(server, "room", NULL, "news", NULL, 4, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
  CHECK(roomcast_server_emit_binary(server, NULL, "bin", (const uint8_t *)"\x01\x02", 2) == ROOMCAST_RESULT_OK);
  int fd = -1;
  roomcast_event *ev = NULL;
  CHECK(roomcast_server_event_fd(server, &fd) == ROOMCAST_RESULT_BAD_STATE);
  CHECK(roomcast_server_next_event(server, &ev) == ROOMCAST_RESULT_BAD_STATE);
  CHECK(roomcast_server_on_event(server, on_event, NULL) == ROOMCAST_RESULT_OK);
  roomcast_stats stats;
  CHECK(roomcast_server_stats(server, &stats) == ROOMCAST_RESULT_OK && stats.sockets == 0);
  roomcast_server_free(server); /* frees a running server: stops it first */

  server = make("127.0.0.1:0", true);
  CHECK(roomcast_server_on_event(server, on_event, NULL) == ROOMCAST_RESULT_BAD_STATE);
  CHECK(roomcast_server_event_fd(server, &fd) == ROOMCAST_RESULT_OK && fd >= 0);
  CHECK(roomcast_server_next_event(server, &ev) == ROOMCAST_RESULT_NO_EVENT);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  CHECK(poll(&p, 1, 0) == 0); /* not readable while nothing waits */
  roomcast_server_free(server);

  presence();
  cluster();
  redis();
  recovery();
  backpressure();
  metrics();
  connection_rate();
  after_stop();

  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  puts("api_test: all checks passed");
  return 0;
}
