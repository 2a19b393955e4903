/* A JSON-protocol client on libroomcast: connects, joins "rust" through the
 * server's "join" handler (with an ack), says hello there and prints what
 * the server sends until its own message comes back.
 * Build: cc client.c $(pkg-config --cflags --libs roomcast)
 * Run:   ./client ws://127.0.0.1:3000/ws?name=c   (against chat_server) */
#include <roomcast.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int heard_back, acked;

static void on_event(void *user_data, const char *kind, const char *name, const char *json, size_t len) {
  (void)user_data;
  (void)len;
  pthread_mutex_lock(&lock);
  printf("%s %s %s\n", kind, name, json);
  fflush(stdout);
  if (strcmp(kind, "event") == 0 && strcmp(name, "said") == 0 && strstr(json, "hello from C")) heard_back = 1;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

static void on_ack(void *user_data, roomcast_result result, const char *json, size_t len) {
  (void)user_data;
  (void)len;
  pthread_mutex_lock(&lock);
  printf("ack %s %s\n", roomcast_result_message(result), json ? json : "");
  fflush(stdout);
  acked = 1;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

/* Wait up to 5 s for *flag. */
static int wait_for(int *flag) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 5;
  pthread_mutex_lock(&lock);
  while (!*flag && pthread_cond_timedwait(&changed, &lock, &deadline) == 0) {
  }
  int ok = *flag;
  pthread_mutex_unlock(&lock);
  return ok;
}

int main(int argc, char **argv) {
  roomcast_client *client = NULL;
  if (argc < 2 || roomcast_client_new(argv[1], NULL, &client) != ROOMCAST_RESULT_OK) {
    fprintf(stderr, "usage: client ws://host:port/ws\n");
    return 2;
  }
  roomcast_client_set_reconnect(client, true, 200, 2000, 0);
  roomcast_client_on_event(client, on_event, NULL);
  roomcast_result r = roomcast_client_connect(client);
  if (r != ROOMCAST_RESULT_OK) {
    fprintf(stderr, "connect: %s: %s\n", roomcast_result_message(r), roomcast_client_last_error(client));
    roomcast_client_free(client);
    return 1;
  }
  char *id = NULL;
  if (roomcast_client_id(client, &id) == ROOMCAST_RESULT_OK) {
    printf("connected as %s\n", id);
    roomcast_string_free(id);
  }
  const char *room = "\"rust\"", *hello = "[\"rust\",\"hello from C\"]";
  roomcast_client_emit_with_ack(client, "join", room, strlen(room), on_ack, NULL);
  int ok = wait_for(&acked);
  ok = ok && roomcast_client_emit(client, "say", hello, strlen(hello)) == ROOMCAST_RESULT_OK;
  ok = ok && wait_for(&heard_back);
  roomcast_client_close(client);
  roomcast_client_free(client);
  puts(ok ? "client: done" : "client: timed out");
  return ok ? 0 : 1;
}
