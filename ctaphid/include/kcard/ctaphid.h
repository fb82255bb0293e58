/* libctaphid's public face: the one header a program outside kcard includes
 * (#include <kcard/ctaphid.h>, flags from `pkg-config libctaphid`). It pulls
 * in the public ctaphid headers, installed under <kcard/ctaphid/>, and names
 * the API version. Everything it does not include is private to kcard.
 *
 * Named kcard/ctaphid.h: the project (kcard) is the include namespace and the
 * library (ctaphid) the header, so it cannot clash with another CTAPHID code.
 *
 * Inside the kcard tree the headers below resolve from the repo root (-I.);
 * installed, `make install` rewrites their "ctaphid/x.h" includes to
 * "kcard/ctaphid/x.h" so -I${includedir} alone finds them.
 *
 * Not declared here: the unit-test hooks (kc_mem_* in
 * ctaphid/transport_mem_int.h, kc_reassembly_* and kc_frag_* in
 * ctaphid/io_int.h) and struct kc_transport's layout (ctaphid/transport_int.h):
 * a caller holds a transport as an opaque pointer and reads it through
 * kc_transport_uri, kc_transport_kind, kc_transport_last_error and
 * kc_transport_last_errno. None of those private headers is installed, and
 * libctaphid.so exports only what these headers declare (see
 * ctaphid/libctaphid.map). */
#ifndef KCARD_CTAPHID_PUBLIC_H
#define KCARD_CTAPHID_PUBLIC_H

/* The API version. MAJOR changes when a call or struct changes
 * incompatibly (the shared library's SONAME is libctaphid.so.MAJOR and its
 * symbol version KCARD_CTAPHID_MAJOR), MINOR when calls are added, PATCH for
 * fixes. The Makefile reads these three lines. */
#define KC_VERSION_MAJOR 1
#define KC_VERSION_MINOR 1
#define KC_VERSION_PATCH 0
#define KC_VERSION "1.1.0"

#include "ctaphid/status.h"    /* KC_OK, KC_ERR_*, kc_strerror, kc_err_name */
#include "ctaphid/io.h"        /* struct kc_dev: timeouts, callbacks, close */
#include "ctaphid/discover.h"  /* kc_dev_open by URI, kc_discover_list */
#include "ctaphid/ctap2.h"     /* getInfo, makeCredential, getAssertion */
#include "ctaphid/pin.h"       /* clientPIN: retries, set, change, tokens */
#include "ctaphid/credman.h"   /* authenticatorCredentialManagement */
#include "ctaphid/config.h"    /* authenticatorConfig */
#include "ctaphid/largeblob.h" /* authenticatorLargeBlobs */

#endif
