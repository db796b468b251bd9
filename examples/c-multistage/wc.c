/* Count the lines, words and bytes of a file (or of stdin), like wc. */
#include <ctype.h>
#include <stdio.h>

#ifndef VERSION
#define VERSION "dev"
#endif

int main(int argc, char **argv) {
    FILE *in = stdin;
    const char *name = "-";
    if (argc > 1) {
        name = argv[1];
        in = fopen(name, "r");
        if (!in) {
            perror(name);
            return 1;
        }
    }
    long lines = 0, words = 0, bytes = 0;
    int c, inword = 0;
    while ((c = getc(in)) != EOF) {
        bytes++;
        if (c == '\n')
            lines++;
        if (isspace(c))
            inword = 0;
        else if (!inword) {
            inword = 1;
            words++;
        }
    }
    printf("wc " VERSION ": %ld lines, %ld words, %ld bytes in %s\n", lines, words, bytes, name);
    return 0;
}
