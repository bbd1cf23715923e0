/*
 * spfrecord.h - strict RFC 7208 checks of SPF records and explanation
 * strings, before anything reaches libspf2
 *
 * libspf2 1.2.10 as Debian 12 ships it crashes or aborts on crafted
 * records (CVE-2021-20314, CVE-2021-33912, CVE-2021-33913,
 * CVE-2023-42118: long records, long macro expansions, macro parsing
 * underflow) and accepts many records RFC 7208 calls a permerror. So every
 * record is parsed here first against the ABNF of RFC 7208 section 12,
 * with bounds: a record that fails is a permerror and libspf2 never sees
 * it.
 *
 * Bounds (generous for real records, far below what the known attacks
 * need): a record of at most SG_SPF_RECORD_MAX characters, at most
 * SG_SPF_TERMS_MAX terms, SG_SPF_MACROS_MAX macros in the whole record and
 * no transformer above 128 digits.
 *
 * Pure functions of (bytes, length): no globals, no allocation; callable
 * on any input (fuzzing).
 */
#ifndef SG_SPFRECORD_H
#define SG_SPFRECORD_H

#include <stdbool.h>
#include <stddef.h>

#define SG_SPF_RECORD_MAX 1024
#define SG_SPF_TERMS_MAX  40
#define SG_SPF_MACROS_MAX 24
#define SG_SPF_EXP_MAX    512   /* an explanation string */

/* True when text (len bytes) is an SPF record at all: "v=spf1" followed
 * by a space or the end (case-insensitive), RFC 7208 4.5. */
bool sg_spf_is_record(const char *text, size_t len);

struct sg_spf_check {
    bool ok;
    char reason[96];            /* why not, when !ok */
    int dns_terms;              /* include a mx ptr exists redirect */
    bool has_redirect, has_exp, has_all;
};

/* Check a record; out->ok false with a reason for a permerror. */
void sg_spf_record_check(const char *text, size_t len,
                         struct sg_spf_check *out);

/* Check an explanation string (the TXT that exp= points at): a
 * macro-string where c, r and t are allowed too. */
bool sg_spf_exp_check(const char *text, size_t len, char *reason,
                      size_t size);

/*
 * The record as libspf2 should see it, for a record that passed
 * sg_spf_record_check(): the same meaning in the forms libspf2 1.2.10
 * understands. Unknown modifiers dropped (RFC 7208 6: ignored anyway);
 * "ip4:x/0" and "ip6:x/0", which it refuses, as two /1 halves; in "a" and
 * "mx" only the prefix length of the client's family; "a/0" for an IPv4
 * client as "exists". Returns the length, 0 when it does not fit.
 */
size_t sg_spf_record_for_libspf2(const char *in, size_t len, bool client_v4,
                                 char *out, size_t size);

/*
 * libspf2 1.2.10 gets a digit transformer wrong when it asks for as many
 * parts as the value has, or more: "%{d2}" of "example.com" is ".com",
 * not "example.com" (RFC 7208 7.1: the rightmost N parts, so all of them).
 * For the macros whose values are known (values['s' - 'a'] and so on;
 * NULL: unknown, as %{p} before the evaluation), drop such a digit from
 * a record rewritten by sg_spf_record_for_libspf2(): "all parts" is what
 * no digit says. In place (the text only gets shorter).
 */
void sg_spf_macro_digits(char *rec, const char *const values[26]);

/*
 * The macros of a record rewritten by sg_spf_record_for_libspf2() that
 * libspf2 1.2.10 expands wrongly, expanded here (RFC 7208 7.3) and
 * written into the record as text: those with the delimiters "," or "/"
 * (7.1), which it refuses; those with an upper-case letter (it does not
 * URL-escape "'" and others outside RFC 3986's unreserved set); every
 * %{p} (libspf2 would count its lookups as terms, and a digit of it is
 * beyond sg_spf_macro_digits). values as for sg_spf_macro_digits; rec
 * has room for size bytes, and a macro whose expansion does not fit
 * stays as it is. Returns the letters (bit letter - 'a')
 * of such macros whose value is unknown (NULL), to be expanded in a
 * second call once the caller has the value (%{p}).
 */
unsigned sg_spf_macro_delims(char *rec, size_t size,
                             const char *const values[26]);

/* Marks on exists: names for the /0 forms libspf2 refuses: NAME + mark
 * exists when NAME has an MX host with an A (MX4) or AAAA (MX6) record, or
 * has an AAAA record itself (A6). ".invalid" never resolves (RFC 6761). */
#define SG_SPF_MARK_MX4 ".sg-mx4.invalid"
#define SG_SPF_MARK_MX6 ".sg-mx6.invalid"
#define SG_SPF_MARK_A6  ".sg-a6.invalid"

#endif /* SG_SPFRECORD_H */
