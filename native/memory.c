/*
 * siplb's one native piece: two calls Node.js does not offer, for src/core/memory-trim.ts.
 *
 *   dropPages(start, length) -> 0 or an errno
 *     madvise(MADV_DONTNEED) on a range the caller has checked is a private, read-only mapping
 *     of a file with no page of its own (smaps "Anonymous: 0 kB"): for such a mapping the call
 *     only removes the page-table entries, and a later access maps the same page of the file
 *     again (from the page cache, a minor fault). It must never be given anything else: on
 *     anonymous or written memory MADV_DONTNEED discards the data.
 *
 *   mallocTrim() -> 1 (memory returned), 0 (none), or -1 (not glibc)
 *     glibc's malloc_trim(0): gives the free pages of every malloc arena back to the kernel.
 *
 * Built by native/build.cjs with the system's C compiler and no Node.js headers (node-api.h
 * declares the Node-API functions used), so the same file builds against any Node.js that siplb
 * supports.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include "node-api.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value drop_pages(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double start = -1, length = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != 0 || argc != 2 ||
      napi_get_value_double(env, argv[0], &start) != 0 || napi_get_value_double(env, argv[1], &length) != 0) {
    return int32_value(env, EINVAL);
  }
  /* Whole pages of user space only: anything else is a caller's bug, refused rather than rounded. */
  if (!(start > 0) || !(length > 0) || start > 9007199254740991.0 || length > 9007199254740991.0 ||
      start != (double)(uint64_t)start || length != (double)(uint64_t)length ||
      ((uint64_t)start & 4095) != 0 || ((uint64_t)length & 4095) != 0) {
    return int32_value(env, EINVAL);
  }
  if (madvise((void *)(uintptr_t)(uint64_t)start, (size_t)(uint64_t)length, MADV_DONTNEED) != 0) {
    return int32_value(env, errno);
  }
  return int32_value(env, 0);
}

static napi_value malloc_trim_all(napi_env env, napi_callback_info info) {
  (void)info;
#if defined(__GLIBC__)
  return int32_value(env, malloc_trim(0));
#else
  return int32_value(env, -1);
#endif
}

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  export_function(env, exports, "dropPages", 9, drop_pages);
  export_function(env, exports, "mallocTrim", 10, malloc_trim_all);
  return exports;
}
