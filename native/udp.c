/*
 * UDP I/O for src/transport/udp-native.ts: what Node.js's dgram costs per datagram, paid per batch.
 *
 * dgram hands JavaScript one datagram at a time: per datagram a callback from C++ into
 * JavaScript (with its microtask and nextTick checkpoint), a fresh ArrayBuffer, a string for
 * the address, an object for the sender; and per send a request object and a round through
 * libuv. At a thousand calls a second those paths, kernel included, were about a third of
 * siplb's CPU; doing it here took a fifth off the CPU per call (bench/README.md).
 * Here a readable socket is drained with recvmmsg(2) into one buffer JavaScript shares, and
 * JavaScript is called once for all of it; a send is one sendto(2), on the caller's turn.
 *
 *   open(fd, rx, meta, slotSize, onBatch) -> handle
 *     Watches a dup of fd (an IPv4 UDP socket Node.js bound) for reading; Node.js must no longer
 *     read it. When readable: up to meta.length / 4 datagrams, datagram i at rx[i * slotSize],
 *     meta[4i..4i+3] = length, sender's port, sender's IPv4 address (network order read as a
 *     little-endian int32 by the caller), 1 if it was longer than slotSize; then onBatch(n).
 *     onBatch(-errno) when the socket reports an error (ECONNREFUSED: ICMP port unreachable for
 *     what a connected socket sent).
 *   sendTo(handle, buf, address, port) -> 0 or errno     (address: dotted IPv4 text)
 *   send(handle, buf) -> 0 or errno                      (a connected socket)
 *   close(handle)                                         (stops watching, closes the dup)
 *   setReadDelay(ms) -> 0 or EINVAL                       (0..100 ms, for every handle: see read_scheduler)
 *
 * A send that would block returns EAGAIN: the caller queues it through dgram instead.
 *
 * No Node.js headers are needed: node-api.h declares the Node-API functions used, and the libuv
 * ones are declared below (libuv's C ABI is stable within its major version, 1).
 * Only uv_poll_t's first field, `data`, is touched; its size comes from uv_handle_size().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node-api.h"

typedef void uv_loop_t;
typedef void uv_handle_t;
typedef struct { void *data; } uv_poll_t; /* the real struct is larger: allocated by uv_handle_size */
typedef void (*uv_poll_cb)(uv_poll_t *handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_t *handle);
typedef struct { void *data; } uv_timer_t; /* likewise */
typedef void (*uv_timer_cb)(uv_timer_t *handle);
int uv_poll_init(uv_loop_t *loop, uv_poll_t *handle, int fd);
int uv_poll_start(uv_poll_t *handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t *handle);
void uv_close(uv_handle_t *handle, uv_close_cb close_cb);
size_t uv_handle_size(int type);
int uv_timer_init(uv_loop_t *loop, uv_timer_t *handle);
int uv_timer_start(uv_timer_t *handle, uv_timer_cb cb, uint64_t timeout, uint64_t repeat);
int uv_is_active(const uv_handle_t *handle);
uint64_t uv_now(const uv_loop_t *loop);
#define UV_POLL_TYPE 8 /* uv_handle_type UV_POLL */
#define UV_TIMER_TYPE 13 /* uv_handle_type UV_TIMER */
#define UV_READABLE_EVENT 1

#define MAX_BATCH 64
#define MAX_READ_DELAY_MS 100
#define DENSE_PER_SECOND 1000
#define WINDOW_MS 100

typedef struct udp_handle udp_handle;

/*
 * Reads put off by a short delay (setReadDelay, default 0), per Node.js environment: a socket that turns
 * readable waits, with every other socket that turns readable meanwhile, for one timer, so that
 * one wakeup of the process reads the datagrams of all of them. At a thousand calls a second a
 * socket otherwise wakes the process for two or three datagrams, and each wakeup (the scheduler,
 * epoll, a call into JavaScript, cold caches) costs more than the datagrams it brings.
 * Nothing waits while fewer than DENSE_PER_SECOND datagrams arrive (judged over the last window
 * of WINDOW_MS or more): a lone datagram gains nothing from waiting. A socket whose last read
 * filled the batch is busy: it is read as soon as it is readable again, so the delay never holds
 * back a socket that has more waiting than one batch.
 * While it stays dense, a socket that had datagrams is read again at the next tick of the timer
 * without going back to epoll: otherwise each round costs two wakeups, one for the first datagram
 * (which only starts the timer) and one for the timer. A tick that finds a socket empty puts it
 * back on epoll, so the timer stops when the traffic does.
 */
typedef struct {
  uint32_t delay_ms;    /* 0: read as soon as readable */
  /* Datagrams read in the current window, and whether the last window was dense: below
   * DENSE_PER_SECOND nothing waits (a lone datagram gains nothing from waiting). */
  uint64_t window_start;
  uint32_t window_count;
  int dense;
  uv_loop_t *loop;
  uv_timer_t *timer;    /* NULL when it could not be made: nothing waits */
  udp_handle *waiting;  /* readable, not read yet, in the order they turned readable */
  udp_handle *next_tick; /* read at this tick and to be read again at the next, off epoll */
  udp_handle *all;      /* every open handle of the environment */
} read_scheduler;

struct udp_handle {
  napi_env env;
  int fd;               /* the dup; -1 once closed */
  uv_poll_t *poll;      /* NULL once closed */
  napi_ref on_batch;
  napi_ref rx_ref;
  napi_ref meta_ref;
  /* The handle's own JavaScript value, held while it is open: a socket being read is never
   * collected (and finalized) under a callback; close() lets it go. */
  napi_ref self_ref;
  napi_async_context async;
  uint8_t *rx;
  int32_t *meta;
  size_t slot_size;
  unsigned slots;
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in from[MAX_BATCH];
  /* Inside onBatch: a close() from there (a node forgotten on ICMP unreachable) stops reading at
   * once but leaves the callback's references and async context alive until it returns. */
  int in_callback;
  int release_pending;
  read_scheduler *sched; /* NULL once the environment's scheduler is gone */
  udp_handle *next_waiting;
  udp_handle *next_of_all;
  int busy;              /* the last read filled the batch */
};

static void unlink_handle(udp_handle **list, udp_handle *h, size_t next_offset) {
  for (udp_handle **p = list; *p != NULL; p = (udp_handle **)((char *)*p + next_offset)) {
    if (*p == h) {
      *p = *(udp_handle **)((char *)h + next_offset);
      *(udp_handle **)((char *)h + next_offset) = NULL;
      return;
    }
  }
}

static void release_references(udp_handle *h) {
  if (h->on_batch != NULL) { napi_delete_reference(h->env, h->on_batch); h->on_batch = NULL; }
  if (h->rx_ref != NULL) { napi_delete_reference(h->env, h->rx_ref); h->rx_ref = NULL; }
  if (h->meta_ref != NULL) { napi_delete_reference(h->env, h->meta_ref); h->meta_ref = NULL; }
  if (h->async != NULL) { napi_async_destroy(h->env, h->async); h->async = NULL; }
  if (h->self_ref != NULL) { napi_delete_reference(h->env, h->self_ref); h->self_ref = NULL; }
}

static void call_on_batch(udp_handle *h, int32_t n) {
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != 0) return;
  h->in_callback = 1;
  napi_value fn, recv, arg = int32_value(env, n), result;
  if (napi_get_reference_value(env, h->on_batch, &fn) == 0 && fn != NULL && napi_get_global(env, &recv) == 0 /* make_callback wants an object */) {
    if (napi_make_callback(env, h->async, recv, fn, 1, &arg, &result) != 0) {
      /* A throwing handler is reported like one on an event emitter: as an uncaught exception. */
      int pending = 0;
      napi_value err;
      if (napi_is_exception_pending(env, &pending) == 0 && pending && napi_get_and_clear_last_exception(env, &err) == 0) {
        napi_fatal_exception(env, err);
      }
    }
  }
  h->in_callback = 0;
  if (h->release_pending) {
    h->release_pending = 0;
    release_references(h);
  }
  napi_close_handle_scope(env, scope);
}

/* One recvmmsg and one call into JavaScript; the number of datagrams read (0 when none or on an
 * error, which the callback is told). h may be closed when it returns (not freed). */
static int read_batch(udp_handle *h) {
  /* The headers were laid out at open; the kernel rewrites only the address's length. */
  for (unsigned i = 0; i < h->slots; i++) h->msgs[i].msg_hdr.msg_namelen = sizeof h->from[i];
  int n = recvmmsg(h->fd, h->msgs, h->slots, MSG_DONTWAIT, NULL);
  if (n < 0) {
    h->busy = 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    call_on_batch(h, -errno);
    return 0;
  }
  h->busy = n == (int)h->slots;
  if (h->sched != NULL) h->sched->window_count += (uint32_t)n;
  for (int i = 0; i < n; i++) {
    int32_t *m = h->meta + 4 * i;
    m[0] = (int32_t)h->msgs[i].msg_len;
    m[1] = ntohs(h->from[i].sin_port);
    memcpy(&m[2], &h->from[i].sin_addr.s_addr, 4);
    m[3] = (h->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
  }
  if (n > 0) call_on_batch(h, n);
  return n;
}

static void on_readable(uv_poll_t *poll, int status, int events);
static int is_dense(read_scheduler *s);

static void append_to(udp_handle **list, udp_handle *h) {
  while (*list != NULL) list = &(*list)->next_waiting;
  *list = h;
}

static void on_delay_over(uv_timer_t *timer) {
  read_scheduler *s = (read_scheduler *)timer->data;
  if (s == NULL) return;
  int again = s->delay_ms > 0 && is_dense(s);
  /* A callback may close any handle on either list: close_handle takes it off both. */
  while (s->waiting != NULL) {
    udp_handle *h = s->waiting;
    s->waiting = h->next_waiting;
    h->next_waiting = NULL;
    int n = read_batch(h);
    if (h->poll == NULL) continue; /* closed meanwhile */
    if (again && n > 0 && !h->busy) append_to(&s->next_tick, h);
    else uv_poll_start(h->poll, UV_READABLE_EVENT, on_readable);
  }
  if (s->next_tick == NULL) return;
  s->waiting = s->next_tick;
  s->next_tick = NULL;
  if (uv_timer_start(s->timer, on_delay_over, s->delay_ms, 0) == 0) return;
  /* No timer: back to epoll, read as soon as readable. */
  while (s->waiting != NULL) {
    udp_handle *h = s->waiting;
    s->waiting = h->next_waiting;
    h->next_waiting = NULL;
    uv_poll_start(h->poll, UV_READABLE_EVENT, on_readable);
  }
}

/* Whether datagrams arrive often enough that waiting gathers several into one wakeup. */
static int is_dense(read_scheduler *s) {
  uint64_t now = uv_now(s->loop);
  uint64_t span = now - s->window_start;
  if (span >= WINDOW_MS) {
    s->dense = (uint64_t)s->window_count * 1000 >= (uint64_t)DENSE_PER_SECOND * span;
    s->window_start = now;
    s->window_count = 0;
  }
  return s->dense;
}

/* Puts h on the waiting list until the delay is over; 0 when it should be read now. */
static int wait_for_delay(udp_handle *h) {
  read_scheduler *s = h->sched;
  if (s->timer == NULL || !is_dense(s)) return 0;
  if (!uv_is_active((uv_handle_t *)s->timer) && uv_timer_start(s->timer, on_delay_over, s->delay_ms, 0) != 0) return 0;
  uv_poll_stop(h->poll);
  append_to(&s->waiting, h);
  return 1;
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  udp_handle *h = (udp_handle *)poll->data;
  if (h == NULL || h->fd < 0) return;
  if (status < 0) {
    call_on_batch(h, status); /* libuv's status is already -errno */
    return;
  }
  if (h->sched != NULL && h->sched->delay_ms > 0 && !h->busy && wait_for_delay(h)) return;
  read_batch(h);
}

static void free_poll(uv_handle_t *handle) { free(handle); }

static void close_handle(udp_handle *h) {
  if (h->sched != NULL) {
    unlink_handle(&h->sched->waiting, h, offsetof(udp_handle, next_waiting));
    unlink_handle(&h->sched->next_tick, h, offsetof(udp_handle, next_waiting));
    unlink_handle(&h->sched->all, h, offsetof(udp_handle, next_of_all));
    h->sched = NULL;
  }
  if (h->poll != NULL) {
    uv_poll_stop(h->poll);
    h->poll->data = NULL;
    uv_close((uv_handle_t *)h->poll, free_poll);
    h->poll = NULL;
  }
  if (h->fd >= 0) {
    close(h->fd);
    h->fd = -1;
  }
  if (h->in_callback) h->release_pending = 1;
  else release_references(h);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  udp_handle *h = (udp_handle *)data;
  close_handle(h);
  free(h);
}

static udp_handle *handle_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != 0) return NULL;
  return (udp_handle *)p;
}

/* open(fd, rx, meta, slotSize, onBatch) */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd = -1, slot_size = 0;
  void *rx = NULL, *meta = NULL;
  size_t rx_len = 0, meta_len = 0, meta_offset = 0;
  int meta_type = -1;
  napi_value meta_ab;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 5 ||
      napi_get_value_int32(env, argv[0], &fd) != 0 || fd < 0 ||
      napi_get_buffer_info(env, argv[1], &rx, &rx_len) != 0 ||
      napi_get_typedarray_info(env, argv[2], &meta_type, &meta_len, &meta, &meta_ab, &meta_offset) != 0 ||
      meta_type != NAPI_INT32_ARRAY || napi_get_value_int32(env, argv[3], &slot_size) != 0 || slot_size <= 0) {
    return int32_value(env, -EINVAL);
  }
  size_t slots = meta_len / 4;
  if (slots > MAX_BATCH) slots = MAX_BATCH;
  if (slots == 0 || (size_t)slot_size * slots > rx_len) return int32_value(env, -EINVAL);
  udp_handle *h = calloc(1, sizeof *h);
  if (h == NULL) return int32_value(env, -ENOMEM);
  h->env = env;
  h->fd = -1;
  h->rx = rx;
  h->meta = meta;
  h->slot_size = (size_t)slot_size;
  h->slots = (unsigned)slots;
  /* Datagram i lands in slot i of rx, its sender in from[i]; the same for every read. */
  for (unsigned i = 0; i < h->slots; i++) {
    h->iov[i].iov_base = h->rx + (size_t)i * h->slot_size;
    h->iov[i].iov_len = h->slot_size;
    h->msgs[i].msg_hdr.msg_iov = &h->iov[i];
    h->msgs[i].msg_hdr.msg_iovlen = 1;
    h->msgs[i].msg_hdr.msg_name = &h->from[i];
  }
  int err = 0;
  void *loop = NULL;
  napi_value name;
  if (napi_create_reference(env, argv[4], 1, &h->on_batch) != 0 || napi_create_reference(env, argv[1], 1, &h->rx_ref) != 0 ||
      napi_create_reference(env, argv[2], 1, &h->meta_ref) != 0 || napi_create_string_utf8(env, "siplb:udp", 9, &name) != 0 ||
      napi_async_init(env, NULL, name, &h->async) != 0 || napi_get_uv_event_loop(env, &loop) != 0) {
    err = EINVAL;
  } else if ((h->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    err = errno;
  } else if (fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) | O_NONBLOCK) != 0) {
    err = errno;
  } else if ((h->poll = calloc(1, uv_handle_size(UV_POLL_TYPE))) == NULL) {
    err = ENOMEM;
  } else if (uv_poll_init(loop, h->poll, h->fd) != 0) {
    free(h->poll);
    h->poll = NULL;
    err = EINVAL;
  } else {
    h->poll->data = h;
    if (uv_poll_start(h->poll, UV_READABLE_EVENT, on_readable) != 0) err = EINVAL;
  }
  if (err == 0) {
    void *sched = NULL;
    if (napi_get_instance_data(env, &sched) == 0 && sched != NULL) {
      h->sched = (read_scheduler *)sched;
      h->next_of_all = h->sched->all;
      h->sched->all = h;
    }
  }
  napi_value external;
  if (err != 0 || napi_create_external(env, h, finalize_handle, NULL, &external) != 0) {
    close_handle(h);
    free(h);
    return int32_value(env, -(err != 0 ? err : EINVAL));
  }
  if (napi_create_reference(env, external, 1, &h->self_ref) != 0) {
    /* The external owns h now: closed here, freed by its finalizer. */
    close_handle(h);
    return int32_value(env, -EINVAL);
  }
  return external;
}

/* Reads an IPv4 literal into addr; 0 when it is not one. */
static int ipv4_of(napi_env env, napi_value v, struct sockaddr_in *addr) {
  char text[INET_ADDRSTRLEN + 1];
  size_t len = 0;
  if (napi_get_value_string_latin1(env, v, text, sizeof text, &len) != 0 || len >= INET_ADDRSTRLEN) return 0;
  if (memchr(text, 0, len) != NULL) return 0; /* "127.0.0.1\0junk" is not an address */
  return inet_pton(AF_INET, text, &addr->sin_addr) == 1;
}

/* sendTo(handle, buf, address, port) */
static napi_value udp_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *data = NULL;
  size_t len = 0;
  int32_t port = -1;
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 4) return int32_value(env, EINVAL);
  udp_handle *h = handle_of(env, argv[0]);
  if (h == NULL || napi_get_buffer_info(env, argv[1], &data, &len) != 0 || !ipv4_of(env, argv[2], &to) ||
      napi_get_value_int32(env, argv[3], &port) != 0 || port <= 0 || port > 65535) {
    return int32_value(env, EINVAL);
  }
  if (h->fd < 0) return int32_value(env, EBADF);
  to.sin_family = AF_INET;
  to.sin_port = htons((uint16_t)port);
  if (sendto(h->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&to, sizeof to) < 0) return int32_value(env, errno);
  return int32_value(env, 0);
}

/* send(handle, buf): on a connected socket */
static napi_value udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *data = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 2) return int32_value(env, EINVAL);
  udp_handle *h = handle_of(env, argv[0]);
  if (h == NULL || napi_get_buffer_info(env, argv[1], &data, &len) != 0) return int32_value(env, EINVAL);
  if (h->fd < 0) return int32_value(env, EBADF);
  if (send(h->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) return int32_value(env, errno);
  return int32_value(env, 0);
}

static napi_value udp_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 1) return int32_value(env, EINVAL);
  udp_handle *h = handle_of(env, argv[0]);
  if (h == NULL) return int32_value(env, EINVAL);
  close_handle(h);
  return int32_value(env, 0);
}

/* setReadDelay(ms): 0 reads a socket as soon as it is readable; 1..MAX_READ_DELAY_MS. */
static napi_value udp_set_read_delay(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double ms = -1;
  void *sched = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 1 || napi_get_value_double(env, argv[0], &ms) != 0 ||
      !(ms >= 0 && ms <= MAX_READ_DELAY_MS) || ms != (double)(uint32_t)ms) {
    return int32_value(env, EINVAL);
  }
  if (napi_get_instance_data(env, &sched) != 0 || sched == NULL) return int32_value(env, ENOMEM);
  ((read_scheduler *)sched)->delay_ms = (uint32_t)ms;
  return int32_value(env, 0);
}

static void free_timer(uv_handle_t *handle) { free(handle); }

/* The environment is going away; its handles may be finalized before or after this. */
static void finalize_scheduler(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  read_scheduler *s = (read_scheduler *)data;
  for (udp_handle *h = s->all; h != NULL; h = h->next_of_all) h->sched = NULL;
  if (s->timer != NULL) {
    s->timer->data = NULL;
    uv_close((uv_handle_t *)s->timer, free_timer);
  }
  free(s);
}

/* The environment's scheduler, its loop and its timer; NULL when it cannot be had (nothing waits). */
static read_scheduler *new_scheduler(napi_env env) {
  read_scheduler *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  if (napi_get_uv_event_loop(env, (void **)&s->loop) != 0) {
    free(s);
    return NULL;
  }
  uv_timer_t *t = calloc(1, uv_handle_size(UV_TIMER_TYPE));
  if (t != NULL && uv_timer_init(s->loop, t) == 0) {
    t->data = s;
    s->timer = t;
  } else {
    free(t);
  }
  return s;
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  read_scheduler *s = new_scheduler(env);
  if (s != NULL && napi_set_instance_data(env, s, finalize_scheduler, NULL) != 0) finalize_scheduler(env, s, NULL);
  export_function(env, exports, "setReadDelay", 12, udp_set_read_delay);
  export_function(env, exports, "open", 4, udp_open);
  export_function(env, exports, "sendTo", 6, udp_send_to);
  export_function(env, exports, "send", 4, udp_send);
  export_function(env, exports, "close", 5, udp_close);
  return exports;
}
