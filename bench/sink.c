/* A minimal SMTP sink for the sending benchmark, in C so that it is not the bottleneck.
 *
 *     gcc -O2 -o sink bench/sink.c && ./sink PORT SAMPLE_FILE SAMPLE_COUNT
 *
 * One epoll loop on 127.0.0.1:PORT. It speaks just enough SMTP for a client that uses
 * PIPELINING: 220 greeting, EHLO/HELO (advertises PIPELINING and 8BITMIME), 354 for DATA,
 * 250 for everything else, 221 for QUIT. Message bodies are scanned for the terminating
 * CRLF "." CRLF and thrown away; only the first SAMPLE_COUNT are appended to SAMPLE_FILE
 * as they arrived (dot-stuffed, terminator included), each followed by a marker, so the
 * baseline can resend the very bytes Enseigne produced. SIGTERM prints the message count.
 * bench/send.py compiles and starts it; bench/_sink.py is the pure-Python fallback.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MARKER "\0\0MSG\0\0"
#define MARKER_LEN 7
#define LINE_MAX_LEN 1024
#define OUT_MAX 65536

enum { MID_LINE, SAW_CR, LINE_START, SAW_DOT, SAW_DOT_CR };

struct conn {
    int fd;
    int in_data;
    int data_state;          /* position in CRLF "." CRLF while in DATA */
    int sampling;            /* this message is being written to the sample file */
    char line[LINE_MAX_LEN]; /* the command line read so far */
    size_t line_len;
    char out[OUT_MAX];       /* replies not yet written */
    size_t out_len;
};

static volatile sig_atomic_t stop = 0;
static long messages = 0;
static long samples_left = 0;
static FILE *sample_file = NULL;

static void on_term(int sig) { (void)sig; stop = 1; }

static void reply(struct conn *c, const char *text) {
    size_t n = strlen(text);
    if (c->out_len + n <= OUT_MAX) {
        memcpy(c->out + c->out_len, text, n);
        c->out_len += n;
    }
}

static int flush_out(struct conn *c) {
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t w = write(c->fd, c->out + done, c->out_len - done);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        done += (size_t)w;
    }
    memmove(c->out, c->out + done, c->out_len - done);
    c->out_len -= done;
    return 0;
}

/* Returns 1 when the client asked to quit. */
static int command(struct conn *c) {
    const char *line = c->line;
    if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0) {
        reply(c, "250-bench sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    } else if (strncasecmp(line, "DATA", 4) == 0) {
        c->in_data = 1;
        c->data_state = LINE_START;
        c->sampling = samples_left > 0 && sample_file != NULL;
        if (c->sampling) samples_left--;
        reply(c, "354 go ahead\r\n");
    } else if (strncasecmp(line, "QUIT", 4) == 0) {
        reply(c, "221 bye\r\n");
        return 1;
    } else {
        reply(c, "250 OK\r\n");
    }
    return 0;
}

/* Consumes one read; returns 1 when the connection should close after the replies. */
static int consume(struct conn *c, const char *buf, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (c->in_data) {
            size_t start = i;
            int state = c->data_state;
            for (; i < len; i++) {
                char ch = buf[i];
                if (state == SAW_DOT_CR && ch == '\n') { i++; state = -1; break; }
                if (ch == '\r') state = (state == SAW_DOT) ? SAW_DOT_CR : SAW_CR;
                else if (ch == '\n' && state == SAW_CR) state = LINE_START;
                else if (ch == '.' && state == LINE_START) state = SAW_DOT;
                else state = MID_LINE;
            }
            if (c->sampling) fwrite(buf + start, 1, i - start, sample_file);
            if (state == -1) {
                c->in_data = 0;
                messages++;
                if (c->sampling) {
                    fwrite(MARKER, 1, MARKER_LEN, sample_file);
                    if (samples_left == 0) fflush(sample_file);
                    c->sampling = 0;
                }
                reply(c, "250 2.0.0 queued\r\n");
            } else {
                c->data_state = state;
            }
            continue;
        }
        char ch = buf[i++];
        if (ch == '\n') {
            if (c->line_len && c->line[c->line_len - 1] == '\r') c->line_len--;
            c->line[c->line_len] = '\0';
            c->line_len = 0;
            if (command(c)) return 1;
        } else if (c->line_len < LINE_MAX_LEN - 1) {
            c->line[c->line_len++] = ch;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [SAMPLE_FILE SAMPLE_COUNT]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    if (argc >= 4) {
        sample_file = fopen(argv[2], "wb");
        samples_left = atol(argv[3]);
        if (sample_file == NULL) { perror(argv[2]); return 1; }
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 128) < 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    struct epoll_event events[64];
    static char buf[1 << 16];

    while (!stop) {
        int n = epoll_wait(ep, events, 64, 200);
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *fresh = calloc(1, sizeof *fresh);
                    fresh->fd = fd;
                    reply(fresh, "220 bench sink ESMTP\r\n");
                    flush_out(fresh);
                    struct epoll_event add = {.events = EPOLLIN, .data.ptr = fresh};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &add);
                }
                continue;
            }
            int close_it = 0;
            for (;;) {
                ssize_t r = read(c->fd, buf, sizeof buf);
                if (r > 0) {
                    if (consume(c, buf, (size_t)r)) { close_it = 1; break; }
                    continue;
                }
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                close_it = 1; /* end of file or error */
                break;
            }
            if (flush_out(c) < 0) close_it = 1;
            if (!close_it) { /* wait for room when replies are left over */
                struct epoll_event mod = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &mod);
            }
            if (close_it) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
            }
        }
    }
    if (sample_file) fclose(sample_file);
    printf("messages %ld\n", messages);
    return 0;
}
