/* The C API's contract without clients: results for misuse, NULL
 * arguments, errors with details, repeated start/stop, the event queue's
 * fd. Built with -Wall -Wextra -Werror -pedantic, run under ASan+UBSan and
 * valgrind by make test-c. */
#include <roomcast.h>

#include <poll.h>
#include <stdio.h>
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

static void on_event(void *user_data, roomcast_event *ev) {
  (void)user_data;
  (void)ev;
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
  CHECK(roomcast_server_emit(server, NULL, "news", "[1,2]", 5, &sent) == ROOMCAST_RESULT_OK && sent == 0);
  CHECK(roomcast_server_emit(server, "room", "news", "{not json", 9, NULL) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_emit(server, "room", "news", "{\"a\":1}", 7, NULL) == ROOMCAST_RESULT_INVALID_ARGUMENT);
  CHECK(roomcast_server_emit(server, "room", "news", NULL, 4, NULL) == ROOMCAST_RESULT_NULL_ARGUMENT);
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

  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  puts("api_test: all checks passed");
  return 0;
}
