/*
 * replay.c - runs a harness over files, without libFuzzer: the regression
 * corpus on every CI run (under ASan/UBSan in the sanitizer build), and
 * any crash file a fuzzing run leaves, under a debugger.
 *
 *   fuzz-NAME-replay FILE|DIR...
 *
 * Each input ends where a PROT_NONE guard page begins, so a read past its
 * end faults at once, also from inside libc where ASan does not look
 * (sscanf() on an unterminated buffer is the classic case).
 *
 * Exit 0 when every input ran to the end (a crash aborts the process).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    size_t page = (size_t) sysconf(_SC_PAGESIZE), span;
    uint8_t *map, *buf;
    long n;

    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        if (fp)
            fclose(fp);
        return 1;
    }
    span = ((size_t) n + page - 1) / page * page;
    map = mmap(NULL, span + page, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (map == MAP_FAILED || mprotect(map + span, page, PROT_NONE) != 0) {
        fprintf(stderr, "replay: cannot map %ld bytes for %s\n", n, path);
        fclose(fp);
        return 1;
    }
    buf = map + span - (size_t) n;      /* the last byte touches the guard */
    if (fread(buf, 1, (size_t) n, fp) != (size_t) n) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        munmap(map, span + page);
        fclose(fp);
        return 1;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, (size_t) n);
    munmap(map, span + page);
    return 0;
}

static int run_path(const char *path, unsigned *count)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    int rc = 0;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: no %s\n", path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    if ((d = opendir(path)) == NULL)
        return 1;
    while ((e = readdir(d)) != NULL) {
        char sub[4096];

        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rc |= run_path(sub, count);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int rc = 0;

    for (int i = 1; i < argc; i++)
        rc |= run_path(argv[i], &count);
    printf("replay: %u inputs, all ran to the end\n", count);
    return rc;
}
