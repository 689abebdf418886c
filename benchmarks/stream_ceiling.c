/* The veth's ceiling for benchmarks/stream_rate.py: a plain C sender, compiled at
 * benchmark time, that sends one template frame flat out with sendmmsg (BATCH frames a
 * call) on a PACKET_QDISC_BYPASS socket, writing a sequence number and a send time after
 * the marker as the stream engine does, so the engine's receiver counts its frames.
 *
 *   stream_ceiling IFNAME FRAME_HEX STAMP_AT SECONDS  ->  "<sent> <seconds> <errors>"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64
#define MAX_LEN 2048

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    static unsigned char frames[BATCH][MAX_LEN];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    if (argc != 5) {
        fprintf(stderr, "usage: %s IFNAME FRAME_HEX STAMP_AT SECONDS\n", argv[0]);
        return 2;
    }
    size_t len = strlen(argv[2]) / 2;
    long stamp_at = strtol(argv[3], NULL, 10);
    double seconds = strtod(argv[4], NULL);
    if (len < 14 || len > MAX_LEN || stamp_at < 0 || (size_t)stamp_at + 12 > len) {
        fprintf(stderr, "bad frame or stamp offset\n");
        return 2;
    }
    for (size_t i = 0; i < len; i++) sscanf(argv[2] + 2 * i, "%2hhx", &frames[0][i]);
    for (int i = 1; i < BATCH; i++) memcpy(frames[i], frames[0], len);

    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    int one = 1;
    struct sockaddr_ll addr = {.sll_family = AF_PACKET, .sll_ifindex = if_nametoindex(argv[1])};
    if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) ||
        !addr.sll_ifindex || bind(fd, (struct sockaddr *)&addr, sizeof addr)) {
        perror(argv[1]);
        return 1;
    }
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = frames[i];
        iov[i].iov_len = len;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t start = now_ns(CLOCK_MONOTONIC), t = start;
    uint64_t end = start + (uint64_t)(seconds * 1e9), sent = 0, errors = 0;
    while (t < end) {
        uint64_t rel = t - start;  /* one clock read per call: ns since the start */
        uint16_t hi = htons((uint16_t)(rel >> 32));
        uint32_t lo = htonl((uint32_t)rel);
        for (int i = 0; i < BATCH; i++) {
            uint32_t num = (uint32_t)(sent + i);
            /* the balancing word: the stamp's one's-complement sum is zero (agent.py) */
            uint16_t bal = htons((uint16_t)((0xFFFF - ((uint64_t)num + rel) % 0xFFFF) % 0xFFFF));
            uint32_t seq = htonl(num);
            memcpy(frames[i] + stamp_at, &seq, 4);
            memcpy(frames[i] + stamp_at + 4, &hi, 2);
            memcpy(frames[i] + stamp_at + 6, &lo, 4);
            memcpy(frames[i] + stamp_at + 10, &bal, 2);
        }
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n < 0) {
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
                perror("sendmmsg");
                return 1;
            }
            errors++;
        } else {
            sent += (uint64_t)n;
        }
        t = now_ns(CLOCK_MONOTONIC);
    }
    printf("%llu %.9f %llu\n", (unsigned long long)sent, (double)(t - start) / 1e9,
           (unsigned long long)errors);
    return 0;
}
