/*
 * The part of Node-API siplb's addons use, declared here instead of taken from Node.js's headers:
 * Node-API's C ABI is stable across Node.js releases, so the addons build with the system's C
 * compiler alone, against any Node.js siplb supports. Each function is resolved at load time
 * from the running node binary.
 */
#ifndef SIPLB_NODE_API_H
#define SIPLB_NODE_API_H

#include <stddef.h>
#include <stdint.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_ref__ *napi_ref;
typedef struct napi_handle_scope__ *napi_handle_scope;
typedef struct napi_async_context__ *napi_async_context;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef void (*napi_finalize)(napi_env env, void *data, void *hint);

napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *argc, napi_value *argv, napi_value *this_arg, void **data);
napi_status napi_get_value_double(napi_env, napi_value, double *);
napi_status napi_get_value_int32(napi_env, napi_value, int32_t *);
napi_status napi_create_int32(napi_env, int32_t, napi_value *);
napi_status napi_create_function(napi_env, const char *utf8name, size_t length, napi_callback, void *data, napi_value *);
napi_status napi_set_named_property(napi_env, napi_value object, const char *utf8name, napi_value);
napi_status napi_get_buffer_info(napi_env, napi_value, void **data, size_t *length);
napi_status napi_get_typedarray_info(napi_env, napi_value, int *type, size_t *length, void **data, napi_value *arraybuffer, size_t *offset);
napi_status napi_get_value_string_latin1(napi_env, napi_value, char *buf, size_t bufsize, size_t *result);
napi_status napi_create_external(napi_env, void *data, napi_finalize, void *hint, napi_value *);
napi_status napi_get_value_external(napi_env, napi_value, void **);
napi_status napi_create_reference(napi_env, napi_value, uint32_t initial_refcount, napi_ref *);
napi_status napi_delete_reference(napi_env, napi_ref);
napi_status napi_get_reference_value(napi_env, napi_ref, napi_value *);
napi_status napi_open_handle_scope(napi_env, napi_handle_scope *);
napi_status napi_close_handle_scope(napi_env, napi_handle_scope);
napi_status napi_create_string_utf8(napi_env, const char *, size_t, napi_value *);
napi_status napi_create_string_latin1(napi_env, const char *, size_t, napi_value *);
napi_status napi_get_undefined(napi_env, napi_value *);
napi_status napi_async_init(napi_env, napi_value resource, napi_value name, napi_async_context *);
napi_status napi_async_destroy(napi_env, napi_async_context);
napi_status napi_make_callback(napi_env, napi_async_context, napi_value recv, napi_value func, size_t argc, const napi_value *argv, napi_value *result);
napi_status napi_get_global(napi_env, napi_value *);
napi_status napi_is_exception_pending(napi_env, int *);
napi_status napi_get_and_clear_last_exception(napi_env, napi_value *);
napi_status napi_fatal_exception(napi_env, napi_value);
napi_status napi_get_uv_event_loop(napi_env, void **loop);
napi_status napi_set_instance_data(napi_env, void *data, napi_finalize, void *hint);
napi_status napi_get_instance_data(napi_env, void **data);

#define NAPI_INT32_ARRAY 5 /* napi_typedarray_type napi_int32_array */

static inline napi_value int32_value(napi_env env, int32_t n) {
  napi_value result = NULL;
  napi_create_int32(env, n, &result);
  return result;
}

static inline void export_function(napi_env env, napi_value exports, const char *name, size_t length, napi_callback cb) {
  napi_value fn = NULL;
  if (napi_create_function(env, name, length, cb, NULL, &fn) == 0) napi_set_named_property(env, exports, name, fn);
}

#endif
