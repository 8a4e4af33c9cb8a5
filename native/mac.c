// Branch MACs for src/proxy/branch.ts: SipHash-2-4 with its 128-bit output (Aumasson and
// Bernstein) over "<previous hop's Via key>\n<Call-ID>\n<CSeq number as 4 bytes, little-endian>",
// encoded as 16 base64url characters. The JavaScript fallback (src/core/siphash.ts and
// macPart's encoder) computes the same bytes, so balancers with and without this addon accept
// each other's branches. One call into here costs a fraction of a node:crypto hash, whose cost is
// nearly all the binding's.
//
//   setKey(key: Buffer of 16 bytes) -> 0, or -EINVAL
//   mac(viaKey: string, callId: string, cseq: number) -> string (16 characters), or undefined
//     when no key is set or an argument is of the wrong type
//
// Strings are taken as Latin-1 (one byte per character), as siplb's parser produces them.

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node-api.h"

typedef struct {
  uint64_t k0, k1;
  int keyed;
  uint8_t *buf;
  size_t cap;
} mac_state;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                   \
  do {                                                                                             \
    v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                     \
    v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                         \
    v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                         \
    v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                      \
  } while (0)

static uint64_t load64(const uint8_t *p) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
  return x;
}

/** SipHash-2-4-128 of in[0..len) under (k0, k1); out[0] is the low word of the first half. */
static void siphash128(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len, uint32_t out[4]) {
  uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL ^ 0xee;
  uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
  size_t last = len & ~(size_t)7;
  for (size_t pos = 0; pos < last; pos += 8) {
    uint64_t m = load64(in + pos);
    v3 ^= m;
    SIPROUND; SIPROUND;
    v0 ^= m;
  }
  uint64_t b = (uint64_t)(len & 0xff) << 56;
  for (size_t i = 0; last + i < len; i++) b |= (uint64_t)in[last + i] << (8 * i);
  v3 ^= b;
  SIPROUND; SIPROUND;
  v0 ^= b;
  v2 ^= 0xee;
  SIPROUND; SIPROUND; SIPROUND; SIPROUND;
  uint64_t h = v0 ^ v1 ^ v2 ^ v3;
  out[0] = (uint32_t)h; out[1] = (uint32_t)(h >> 32);
  v1 ^= 0xdd;
  SIPROUND; SIPROUND; SIPROUND; SIPROUND;
  h = v0 ^ v1 ^ v2 ^ v3;
  out[2] = (uint32_t)h; out[3] = (uint32_t)(h >> 32);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int ensure(mac_state *s, size_t need) {
  if (need <= s->cap) return 1;
  size_t cap = s->cap * 2 > need ? s->cap * 2 : need;
  uint8_t *next = realloc(s->buf, cap);
  if (next == NULL) return 0;
  s->buf = next;
  s->cap = cap;
  return 1;
}

/** Appends a string's Latin-1 bytes at *pos; 0 on a wrong type or no memory. */
static int append_string(napi_env env, mac_state *s, napi_value v, size_t *pos) {
  if (!ensure(s, *pos + 2)) return 0;
  size_t room = s->cap - *pos, copied = 0;
  if (napi_get_value_string_latin1(env, v, (char *)s->buf + *pos, room, &copied) != 0) return 0;
  if (copied + 1 >= room) {
    // It may have been cut short: ask for the length, make room, read it again.
    size_t len = 0;
    if (napi_get_value_string_latin1(env, v, NULL, 0, &len) != 0 || !ensure(s, *pos + len + 16)) return 0;
    if (napi_get_value_string_latin1(env, v, (char *)s->buf + *pos, len + 1, &copied) != 0) return 0;
  }
  *pos += copied;
  return 1;
}

static napi_value undefined_value(napi_env env) {
  napi_value v = NULL;
  napi_get_undefined(env, &v);
  return v;
}

static napi_value set_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  mac_state *s = NULL;
  void *data = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&s) != 0 || s == NULL || argc < 1 ||
      napi_get_buffer_info(env, argv[0], &data, &len) != 0 || len != 16) {
    return int32_value(env, -EINVAL);
  }
  s->k0 = load64((const uint8_t *)data);
  s->k1 = load64((const uint8_t *)data + 8);
  s->keyed = 1;
  return int32_value(env, 0);
}

static napi_value mac(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  mac_state *s = NULL;
  int32_t cseq = 0;
  size_t pos = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&s) != 0 || s == NULL || !s->keyed || argc < 3 ||
      napi_get_value_int32(env, argv[2], &cseq) != 0) {
    return undefined_value(env);
  }
  if (!append_string(env, s, argv[0], &pos) || !ensure(s, pos + 1)) return undefined_value(env);
  s->buf[pos++] = '\n';
  if (!append_string(env, s, argv[1], &pos) || !ensure(s, pos + 5)) return undefined_value(env);
  s->buf[pos++] = '\n';
  uint32_t n = (uint32_t)cseq;
  for (int i = 0; i < 4; i++) s->buf[pos++] = (uint8_t)(n >> (8 * i));
  uint32_t w[4];
  siphash128(s->k0, s->k1, s->buf, pos, w);
  // 5 characters (30 bits) from each of the first three words, the 16th from their top 2 bits.
  char text[16];
  int t = 0;
  for (int k = 0; k < 3; k++) {
    for (int j = 0; j < 30; j += 6) text[t++] = B64[(w[k] >> j) & 63];
  }
  text[t] = B64[(w[0] >> 30) | ((w[1] >> 30) << 2) | ((w[2] >> 30) << 4)];
  napi_value out = NULL;
  if (napi_create_string_latin1(env, text, 16, &out) != 0) return undefined_value(env);
  return out;
}

static void finalize_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  mac_state *s = data;
  free(s->buf);
  free(s);
}

/** Exports `cb` as `name`, called with the state as its data. */
static void export_with_state(napi_env env, napi_value exports, const char *name, size_t length, napi_callback cb, mac_state *s) {
  napi_value fn = NULL;
  if (napi_create_function(env, name, length, cb, s, &fn) == 0) napi_set_named_property(env, exports, name, fn);
}

/* The state lives as long as the environment (instance data); without it nothing is exported,
 * and the loader reports the addon as unusable. */
napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  mac_state *s = calloc(1, sizeof *s);
  if (s == NULL) return exports;
  s->cap = 1024;
  s->buf = malloc(s->cap);
  if (s->buf == NULL || napi_set_instance_data(env, s, finalize_state, NULL) != 0) {
    free(s->buf);
    free(s);
    return exports;
  }
  export_with_state(env, exports, "setKey", 6, set_key, s);
  export_with_state(env, exports, "mac", 3, mac, s);
  return exports;
}
