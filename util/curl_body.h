/* The libcurl body collector: a transfer's answer read into a capped
 * buffer, the transfer ended (CURLE_WRITE_ERROR) once it would pass the cap. */
#ifndef KCARD_UTIL_CURL_BODY_H
#define KCARD_UTIL_CURL_BODY_H

#include <stddef.h>

#include <curl/curl.h>

#include "util/capbuf.h"

/* A CURLOPT_WRITEFUNCTION whose CURLOPT_WRITEDATA is a struct kcu_capbuf:
 * appends the data, or returns 0 (curl ends the transfer) when it would pass
 * the cap (b->over set) or memory runs out. */
size_t kcu_curl_body_write(char *data, size_t size, size_t nmemb, void *capbuf);

/* Sets both options on e, to collect into b: CURLE_OK or curl's error. */
CURLcode kcu_curl_body_collect(CURL *e, struct kcu_capbuf *b);

#endif
