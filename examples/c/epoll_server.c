/* The chat of chat_server.c driven from one epoll loop: the server's event
 * queue fd and a signalfd, no callbacks, everything on this thread.
 * Build: cc epoll_server.c $(pkg-config --cflags --libs roomcast)
 * Run:   ./epoll_server [host:port]   (prints "listening on <port>"; SIGTERM stops it) */
#include <roomcast.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* The first string of a flat JSON array of strings (no escapes), into buf. */
static int first_string(const char *json, char *buf, size_t size) {
  const char *open = strchr(json, '"');
  const char *close = open ? strchr(open + 1, '"') : NULL;
  if (!close || (size_t)(close - open) > size) return -1;
  memcpy(buf, open + 1, (size_t)(close - open - 1));
  buf[close - open - 1] = '\0';
  return 0;
}

static void handle(roomcast_server *server, roomcast_event *ev) {
  const char *sid = NULL, *name = NULL, *data = NULL;
  size_t len = 0;
  char room[64], reply[160];
  switch (roomcast_event_get_type(ev)) {
    case ROOMCAST_EVENT_CONNECT:
      /* Socket.IO clients name themselves in auth, JSON-protocol ones in the query. */
      roomcast_event_get_data(ev, &data, NULL);
      if (strstr(data, "\"name\"") == NULL && roomcast_event_get_query(ev, "name", &name) != ROOMCAST_RESULT_OK)
        roomcast_event_refuse(ev, "pick a name first");
      else roomcast_event_accept(ev, NULL);
      break;
    case ROOMCAST_EVENT_MESSAGE:
      roomcast_event_get_socket(ev, &sid, NULL);
      roomcast_event_get_name(ev, &name);
      roomcast_event_get_data(ev, &data, &len);
      if (strcmp(name, "join") == 0 && first_string(data, room, sizeof room) == 0) {
        roomcast_server_join(server, sid, room);
        snprintf(reply, sizeof reply, "[\"joined\",\"%s\"]", room);
        roomcast_event_reply(ev, reply, strlen(reply));
      } else if (strcmp(name, "say") == 0 && first_string(data, room, sizeof room) == 0) {
        roomcast_server_emit(server, room, NULL, "said", data, len, NULL);
        roomcast_event_reply(ev, "[true]", 6);
      } else if (roomcast_event_wants_ack(ev)) {
        roomcast_event_reply(ev, data, len);
      }
      break;
    default:
      break;
  }
}

int main(int argc, char **argv) {
  roomcast_server_config *config = NULL;
  roomcast_server *server = NULL;
  int queue_fd = -1, rc = 1;
  uint16_t port = 0;
  /* Blocked before roomcast starts its threads, which inherit the mask:
   * the signals then only reach the signalfd. */
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  if (roomcast_server_config_new(&config) != ROOMCAST_RESULT_OK) return 1;
  roomcast_server_config_set_listen(config, argc > 1 ? argv[1] : "127.0.0.1:0");
  roomcast_server_config_set_event_queue(config, true);
  roomcast_result r = roomcast_server_new(config, &server);
  roomcast_server_config_free(config);
  if (r != ROOMCAST_RESULT_OK || roomcast_server_start(server) != ROOMCAST_RESULT_OK) {
    fprintf(stderr, "cannot start: %s\n", roomcast_server_last_error(server));
    roomcast_server_free(server);
    return 1;
  }
  roomcast_server_port(server, &port);
  roomcast_server_event_fd(server, &queue_fd);

  int signal_fd = signalfd(-1, &signals, 0);
  int ep = epoll_create1(0);
  struct epoll_event watch = {.events = EPOLLIN, .data.fd = queue_fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, queue_fd, &watch);
  watch.data.fd = signal_fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, signal_fd, &watch);
  printf("listening on %u\n", port);
  fflush(stdout);

  for (;;) {
    struct epoll_event ready[4];
    int n = epoll_wait(ep, ready, 4, -1);
    if (n < 0) break;
    int stop = 0;
    for (int i = 0; i < n; i++) {
      if (ready[i].data.fd == signal_fd) {
        stop = 1;
        continue;
      }
      roomcast_event *ev = NULL;
      while (roomcast_server_next_event(server, &ev) == ROOMCAST_RESULT_OK) {
        handle(server, ev);
        roomcast_event_free(ev);
      }
    }
    if (stop) {
      rc = 0;
      break;
    }
  }
  roomcast_server_stop(server);
  roomcast_server_free(server);
  close(ep);
  close(signal_fd);
  return rc;
}
