/* The virtual card's announce file: its URI (and personality) in a folder
 * discovery reads, replaced atomically, removed when unplugged. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "harness/vcard/personality.h"

#include "harness/vcard/server_internal.h"

void vcs_announce_remove(struct vc_server *s)
{
    if (s->announce_path != NULL)
        (void)unlink(s->announce_path);
}

int vcs_announce_write(struct vc_server *s)
{
    char tmp[PATH_MAX];
    char line[160];
    int fd;
    int n;
    bool ok;

    if (s->announce_path == NULL)
        return 0;
    n = snprintf(tmp, sizeof(tmp), "%s/.vcard-%ld.uri.tmp", s->announce_dir, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    /* the first line is the URI alone (what discovery reads) */
    n = snprintf(line, sizeof(line), "%s\npersonality %s\n", s->uri,
                 vc_card_personality(s->card)->name);
    if (n < 0 || (size_t)n >= sizeof(line))
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, s->announce_path) != 0) {
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}
