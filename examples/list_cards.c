/* Example: list the FIDO cards libctaphid can see (hidraw nodes and cards
 * announced in $KCARD_ANNOUNCE_DIR), one line each: URI, kind, ids, name. */
#include <kcard/ctaphid.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CARDS 64

int main(int argc, char **argv)
{
    if (argc > 1) {
        bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
        fprintf(help ? stdout : stderr,
                "usage: list_cards\n"
                "Lists the FIDO hidraw nodes and the cards announced in $KCARD_ANNOUNCE_DIR:\n"
                "URI, kind, vendor:product id and name, one card a line.\n");
        return help ? EXIT_SUCCESS : 2;
    }
    static struct kc_dev_entry cards[MAX_CARDS];
    size_t n = 0;
    int rc = kc_discover_list(cards, MAX_CARDS, &n);
    if (rc != KC_OK) {
        fprintf(stderr, "list_cards: listing cards failed: %s (%s)\n", kc_strerror(rc),
                kc_err_name(rc));
        return EXIT_FAILURE;
    }
    printf("libctaphid %s: %zu card(s)\n", KC_VERSION, n);
    for (size_t i = 0; i < n && i < MAX_CARDS; i++)
        printf("%s\t%s\t%04x:%04x\t%s\n", cards[i].uri, cards[i].kind, cards[i].vid, cards[i].pid,
               cards[i].name[0] != '\0' ? cards[i].name : "-");
    return EXIT_SUCCESS;
}
