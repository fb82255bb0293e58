/* vcard-ctl: sends one command to a running vcard's control socket and
 * prints the answer. See vcard-ctl(1). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

#define VCARD_CTL_VERSION "0.1.0"
#define REPLY_MAX 65536
#define REPLY_TIMEOUT_MS 5000

enum exit_code {
    EXIT_OK = 0,
    EXIT_REFUSED = 1, /* vcard answered ok:false */
    EXIT_USAGE = 2,
    EXIT_CONNECT = 3, /* no control socket there */
    EXIT_REPLY = 4,   /* no answer in time, or not JSON */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vcard-ctl [--control PATH] [--json] COMMAND [ARG]\n"
               "Sends one command to a running vcard's control socket.\n"
               "\n"
               "commands:\n"
               "  approve            approve the pending presence wait (or the next one)\n"
               "  deny               deny it\n"
               "  presence MODE      yes | no | timeout[:MS] | delay:MS | ask\n"
               "  fault PROFILE      add a fault profile (see vcard(1))\n"
               "  clear              remove every fault (and plug back in)\n"
               "  unplug             stop answering, withdraw the announce file\n"
               "  replug             come back on a new port, re-announce\n"
               "  personality NAME   become another card (see vcard --list-personalities):\n"
               "                     a replug with the new personality\n"
               "  status             the card's state as JSON\n"
               "\n"
               "  --control PATH     control socket (default: $VCARD_CONTROL)\n"
               "  --json             print vcard's JSON reply unchanged\n"
               "  -h, --help         this text\n"
               "      --version      print the version\n"
               "\n"
               "Exit status: 0 done, 1 vcard refused the command, 2 usage error,\n"
               "3 cannot connect to the control socket, 4 no or bad reply.\n");
}

static int connect_control(const char *path)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one line (without the newline) into a malloc'd string. */
static char *read_line(int fd)
{
    char *buf = malloc(REPLY_MAX);
    size_t used = 0;
    uint64_t deadline = kcu_now_ms() + REPLY_TIMEOUT_MS;

    if (buf == NULL)
        return NULL;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t now = kcu_now_ms();
        char *nl;
        ssize_t n;

        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
            break;
        n = recv(fd, buf + used, REPLY_MAX - 1 - used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        if ((nl = memchr(buf, '\n', used)) != NULL) {
            *nl = '\0';
            return buf;
        }
        if (used == REPLY_MAX - 1)
            break;
    }
    free(buf);
    return NULL;
}

static void print_human(const char *command, json_t *reply)
{
    json_t *err = json_object_get(reply, "error");
    json_t *uri = json_object_get(reply, "uri");
    json_t *applied = json_object_get(reply, "applied");
    json_t *personality = json_object_get(reply, "personality");

    if (!json_is_true(json_object_get(reply, "ok"))) {
        fprintf(stderr, "vcard-ctl: %s: %s\n", command,
                json_is_string(err) ? json_string_value(err) : "refused");
        return;
    }
    if (strcmp(command, "status") == 0) {
        char *text = json_dumps(reply, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        if (text != NULL) {
            printf("%s\n", text);
            free(text);
        }
        return;
    }
    if (json_is_string(uri) && json_is_string(personality))
        printf("ok: %s at %s\n", json_string_value(personality), json_string_value(uri));
    else if (json_is_string(uri))
        printf("ok: %s\n", json_string_value(uri));
    else if (json_is_string(applied))
        printf("ok: %s\n", strcmp(json_string_value(applied), "pending") == 0
                               ? "applied to the pending presence wait"
                               : "no wait pending; applies to the next one (10 s)");
    else
        printf("ok\n");
}

int main(int argc, char **argv)
{
    enum { OPT_CONTROL = 256, OPT_JSON, OPT_VERSION };
    static const struct option opts[] = {
        {"control", required_argument, NULL, OPT_CONTROL},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *path = getenv("VCARD_CONTROL");
    bool json_out = false;
    char line[512];
    char *reply_text;
    json_t *reply;
    json_error_t jerr;
    int opt;
    int fd;
    int n;
    int rc;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_CONTROL:
            path = optarg;
            break;
        case OPT_JSON:
            json_out = true;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case OPT_VERSION:
            printf("vcard-ctl %s\n", VCARD_CTL_VERSION);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc || argc - optind > 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "vcard-ctl: no control socket: use --control PATH or set VCARD_CONTROL\n");
        return EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        if (strpbrk(argv[i], "\r\n") != NULL) {
            fprintf(stderr, "vcard-ctl: newline in argument\n");
            return EXIT_USAGE;
        }
    }
    if (argc - optind == 2)
        n = snprintf(line, sizeof(line), "%s %s\n", argv[optind], argv[optind + 1]);
    else
        n = snprintf(line, sizeof(line), "%s\n", argv[optind]);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        fprintf(stderr, "vcard-ctl: command too long\n");
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    if ((fd = connect_control(path)) < 0) {
        fprintf(stderr, "vcard-ctl: cannot connect to %s: %s\n", path, strerror(errno));
        return EXIT_CONNECT;
    }
    if (send_all(fd, line, (size_t)n) < 0) {
        fprintf(stderr, "vcard-ctl: cannot send to %s: %s\n", path, strerror(errno));
        close(fd);
        return EXIT_CONNECT;
    }
    reply_text = read_line(fd);
    close(fd);
    if (reply_text == NULL) {
        fprintf(stderr, "vcard-ctl: no reply from %s within %d ms\n", path, REPLY_TIMEOUT_MS);
        return EXIT_REPLY;
    }
    reply = json_loads(reply_text, 0, &jerr);
    if (reply == NULL || !json_is_object(reply)) {
        fprintf(stderr, "vcard-ctl: reply is not a JSON object: %s\n", jerr.text);
        json_decref(reply);
        free(reply_text);
        return EXIT_REPLY;
    }
    rc = json_is_true(json_object_get(reply, "ok")) ? EXIT_OK : EXIT_REFUSED;
    if (json_out)
        printf("%s\n", reply_text);
    else
        print_human(argv[optind], reply);
    json_decref(reply);
    free(reply_text);
    return rc;
}
