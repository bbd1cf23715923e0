/*
 * milterproto.h - MTA side of the Sendmail milter wire protocol, written
 * from scratch for the benchmark client (no libmilter).
 *
 * Every packet in both directions is
 *
 *     uint32 length (big-endian, counts the command byte and the payload)
 *     char   command
 *     char   payload[length - 1]
 *
 * Strings in payloads are NUL-terminated; integers are big-endian.
 */
#ifndef SG_BENCH_MILTERPROTO_H
#define SG_BENCH_MILTERPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Commands, MTA -> milter. */
#define SMFIC_ABORT     'A' /* abort current message, no reply */
#define SMFIC_BODY      'B' /* body chunk */
#define SMFIC_CONNECT   'C' /* host\0 family port(u16) addr\0 */
#define SMFIC_MACRO     'D' /* event byte, name\0value\0..., no reply */
#define SMFIC_BODYEOB   'E' /* end of body: the end-of-message stage */
#define SMFIC_HELO      'H' /* helo name\0 */
#define SMFIC_HEADER    'L' /* name\0value\0 */
#define SMFIC_MAIL      'M' /* <sender>\0 esmtp-arg\0 ... */
#define SMFIC_EOH       'N' /* end of headers */
#define SMFIC_OPTNEG    'O' /* version, actions, protocol flags (3 x u32) */
#define SMFIC_QUIT      'Q' /* close session, no reply */
#define SMFIC_RCPT      'R' /* <rcpt>\0 esmtp-arg\0 ... */
#define SMFIC_DATA      'T' /* DATA command */
#define SMFIC_UNKNOWN   'U' /* unknown SMTP command text\0 */

/* Replies, milter -> MTA. */
#define SMFIR_ADDRCPT     '+'
#define SMFIR_DELRCPT     '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN    '4'
#define SMFIR_ACCEPT      'a'
#define SMFIR_REPLBODY    'b'
#define SMFIR_CONTINUE    'c'
#define SMFIR_DISCARD     'd'
#define SMFIR_CHGFROM     'e'
#define SMFIR_CONN_FAIL   'f'
#define SMFIR_ADDHEADER   'h'
#define SMFIR_INSHEADER   'i'
#define SMFIR_SETSYMLIST  'l'
#define SMFIR_CHGHEADER   'm'
#define SMFIR_PROGRESS    'p'
#define SMFIR_QUARANTINE  'q'
#define SMFIR_REJECT      'r'
#define SMFIR_SKIP        's'
#define SMFIR_TEMPFAIL    't'
#define SMFIR_REPLYCODE   'y'

/* Protocol flags (SMFIP_*): "don't send stage X" and "no reply for X". */
#define SMFIP_NOCONNECT  0x00000001u
#define SMFIP_NOHELO     0x00000002u
#define SMFIP_NOMAIL     0x00000004u
#define SMFIP_NORCPT     0x00000008u
#define SMFIP_NOBODY     0x00000010u
#define SMFIP_NOHDRS     0x00000020u
#define SMFIP_NOEOH      0x00000040u
#define SMFIP_NR_HDR     0x00000080u
#define SMFIP_NOUNKNOWN  0x00000100u
#define SMFIP_NODATA     0x00000200u
#define SMFIP_SKIP       0x00000400u
#define SMFIP_RCPT_REJ   0x00000800u
#define SMFIP_NR_CONN    0x00001000u
#define SMFIP_NR_HELO    0x00002000u
#define SMFIP_NR_MAIL    0x00004000u
#define SMFIP_NR_RCPT    0x00008000u
#define SMFIP_NR_DATA    0x00010000u
#define SMFIP_NR_UNKN    0x00020000u
#define SMFIP_NR_EOH     0x00040000u
#define SMFIP_NR_BODY    0x00080000u
#define SMFIP_HDR_LEADSPC 0x00100000u
#define SMFIP_MDS_256K   0x10000000u
#define SMFIP_MDS_1M     0x20000000u

/* What Postfix 3.x offers with milter_protocol = 6 (MILTER8_V6_PROTO_MASK):
 * every "don't send" and "no reply" bit, SKIP, RCPT_REJ and HDR_LEADSPC. */
#define MP_OFFER_VERSION  6u
#define MP_OFFER_ACTIONS  0x000001FFu /* SMFIF_ADDHDRS .. SMFIF_SETSYMLIST */
#define MP_OFFER_PROTOCOL 0x001FFFFFu

/* Macro stage indexes used in the SETSYMLIST part of the OPTNEG reply. */
enum mp_macro_stage {
    MP_M_CONNECT, MP_M_HELO, MP_M_MAIL, MP_M_RCPT, MP_M_DATA, MP_M_EOM,
    MP_M_EOH, MP_M_COUNT
};

#define MP_BODY_CHUNK 65535u          /* MILTER_CHUNK_SIZE, as Postfix */
#define MP_MAX_REPLY  (16u << 20)     /* refuse replies larger than this */

/* Where the milter listens, resolved once. */
struct mp_addr {
    struct sockaddr_storage sa;
    socklen_t salen;
    char text[300];
};

/* One connection to the milter, with buffered output and input. Output is
 * accumulated and flushed before waiting for a reply, like Postfix's
 * VSTREAM does, so a macro packet and its command travel in one write. */
struct mp_conn {
    int fd;
    int timeout_ms;
    int rcvtimeo_ms;  /* current SO_RCVTIMEO */
    int last_errno;   /* errno of the last failed send */
    unsigned char *out;
    size_t outlen, outcap, pktstart;
    unsigned char *in;
    size_t inlen, inpos, incap;
    char err[256];
};

/* One packet received from the milter; data points into the input buffer
 * and stays valid until the next read. */
struct mp_packet {
    char cmd;
    const unsigned char *data;
    size_t len;
};

/* Parse "inet:PORT@HOST", "inet6:PORT@HOST", "unix:/path", "local:/path"
 * or "/path" (libmilter syntax). Returns 0, or -1 with a message in err. */
int mp_parse_socket(const char *spec, struct mp_addr *addr, char *err,
                    size_t errlen);

void mp_conn_init(struct mp_conn *c, int timeout_ms);
void mp_conn_free(struct mp_conn *c);
/* Connect, bounded by the timeout. 0 or -1. */
int mp_connect(struct mp_conn *c, const struct mp_addr *addr);
void mp_close(struct mp_conn *c);

/* Packet building: begin, append payload pieces, end. */
void mp_begin(struct mp_conn *c, char cmd);
void mp_put(struct mp_conn *c, const void *p, size_t n);
void mp_put_str(struct mp_conn *c, const char *s); /* with its NUL */
void mp_put_u16(struct mp_conn *c, uint16_t v);
void mp_put_u32(struct mp_conn *c, uint32_t v);
void mp_end(struct mp_conn *c);
/* Convenience: a packet without payload. */
void mp_simple(struct mp_conn *c, char cmd);

int mp_flush(struct mp_conn *c);
/* Flush pending output, then read one whole packet. 0 or -1. */
int mp_read(struct mp_conn *c, struct mp_packet *pkt);
/* After QUIT: flush, then wait until the milter closes its end. */
int mp_wait_close(struct mp_conn *c);

uint32_t mp_get_u32(const unsigned char *p);
double mp_now_ms(void);

#endif
