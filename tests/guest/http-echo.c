/* A small HTTP server for the function host's tests and benchmark.
 *
 *   http-echo [PORT]      listens on 0.0.0.0:PORT (default 8080), prints
 *                         "listening on PORT", and answers every request,
 *                         one connection at a time, with status 200, the
 *                         header "X-Echo: rosv" and a text body:
 *
 *                           method: GET
 *                           path: /a/b?c=d
 *                           header: Host: example.com     (one per header)
 *                           body: <the request's body>
 *
 * Bodies come with Content-Length (the function host always sends one).
 * Every answer closes its connection. The path /exit answers, then exits
 * with status 7; /sleep/MS waits MS milliseconds before answering. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX_BYTES (1024 * 1024)

static char request[REQUEST_MAX_BYTES + 1];
static char answer[REQUEST_MAX_BYTES + 65536];

static int write_all(int fd, const char *bytes, size_t length) {
    while (length > 0) {
        ssize_t written = write(fd, bytes, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            return -1;
        bytes += written;
        length -= (size_t)written;
    }
    return 0;
}

/* Reads a request head and its Content-Length body into `request`.
 * Returns the head's length (the body follows it), or -1. */
static long read_request(int fd, size_t *body_length) {
    size_t length = 0;
    char *head_end = NULL;
    while (head_end == NULL) {
        if (length == REQUEST_MAX_BYTES)
            return -1;
        ssize_t count = read(fd, request + length, REQUEST_MAX_BYTES - length);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return -1;
        length += (size_t)count;
        request[length] = '\0';
        head_end = strstr(request, "\r\n\r\n");
    }
    long head_length = head_end + 4 - request;
    size_t content_length = 0;
    for (char *line = strstr(request, "\r\n") + 2; line < head_end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            content_length = strtoul(line + 15, NULL, 10);
    }
    if (content_length > REQUEST_MAX_BYTES - (size_t)head_length)
        return -1;
    while (length < (size_t)head_length + content_length) {
        ssize_t count = read(fd, request + length, (size_t)head_length + content_length - length);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return -1;
        length += (size_t)count;
    }
    *body_length = content_length;
    return head_length;
}

/* Answers one connection; returns 1 if the server should exit. */
static int serve(int fd) {
    size_t body_length = 0;
    long head_length = read_request(fd, &body_length);
    if (head_length < 0)
        return 0;
    char *line_end = strstr(request, "\r\n");
    *line_end = '\0';
    char *method = request;
    char *path = strchr(method, ' ');
    if (path == NULL)
        return 0;
    *path++ = '\0';
    char *version = strchr(path, ' ');
    if (version != NULL)
        *version = '\0';

    size_t length = 0;
    length += (size_t)sprintf(answer + length, "method: %s\npath: %s\n", method, path);
    char *head_end = request + head_length - 4;
    for (char *line = line_end + 2; line < head_end;) {
        char *end = strstr(line, "\r\n");
        length += (size_t)sprintf(answer + length, "header: %.*s\n", (int)(end - line), line);
        line = end + 2;
    }
    length += (size_t)sprintf(answer + length, "body: ");
    memcpy(answer + length, request + head_length, body_length);
    length += body_length;
    answer[length++] = '\n';

    if (strncmp(path, "/sleep/", 7) == 0) {
        long milliseconds = strtol(path + 7, NULL, 10);
        struct timespec pause = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    char head[256];
    int head_size = snprintf(head, sizeof head,
                             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Echo: rosv\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                             length);
    write_all(fd, head, (size_t)head_size);
    write_all(fd, answer, length);
    return strcmp(path, "/exit") == 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8080;
    struct sockaddr_in address = {
        .sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 64) != 0) {
        printf("http-echo: cannot listen on port %d: %s\n", port, strerror(errno));
        return 1;
    }
    printf("listening on %d\n", port);
    fflush(stdout);
    for (;;) {
        int connection = accept(listener, NULL, NULL);
        if (connection < 0) {
            if (errno == EINTR)
                continue;
            printf("http-echo: accept: %s\n", strerror(errno));
            return 1;
        }
        int should_exit = serve(connection);
        shutdown(connection, SHUT_WR);
        close(connection);
        if (should_exit)
            return 7;
    }
}
