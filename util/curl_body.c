/* The libcurl body collector (see curl_body.h). */
#include "util/curl_body.h"

size_t kcu_curl_body_write(char *data, size_t size, size_t nmemb, void *capbuf)
{
    struct kcu_capbuf *b = capbuf;
    size_t n = size * nmemb;

    if (nmemb != 0 && n / nmemb != size) {
        b->over = true;
        return 0;
    }
    return kcu_capbuf_append(b, data, n) == 0 ? n : 0;
}

CURLcode kcu_curl_body_collect(CURL *e, struct kcu_capbuf *b)
{
    CURLcode rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, kcu_curl_body_write);

    return rc != CURLE_OK ? rc : curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
}
