/* Network namespaces by name, as ip-netns(8) keeps them: /run/netns/NAME is a
 * bind mount of a namespace file that setns(2) accepts. Sockets stay in the
 * namespace they were created in, so one process may hold sockets of several. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include "harness/chain/forward.h"

int kcf_netns_open(const char *name)
{
    char path[sizeof("/run/netns/") + KCF_NETNS_MAX];
    int n;

    if (!kcf_netns_name_ok(name)) {
        errno = EINVAL;
        return -1;
    }
    n = snprintf(path, sizeof(path), "/run/netns/%s", name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_CLOEXEC);
}

int kcf_netns_enter(int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    return setns(fd, CLONE_NEWNET);
}
