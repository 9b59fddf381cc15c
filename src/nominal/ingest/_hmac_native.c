/* HMAC-SHA256 of every value of an Arrow text column, as lower-case hex cut to `chars`.
 *
 * Built on first use by nominal.ingest.hmac_native with the system C compiler and
 * loaded with ctypes. HMAC is H((K ^ opad) || H((K ^ ipad) || m)); the compression
 * states after the two padded-key blocks are the same for every value, so the caller
 * passes them in and each value costs the compressions of its own bytes plus padding
 * (one for a value under 56 bytes) and one for the outer hash.
 *
 * On x86-64 processors with the SHA extensions the compression uses them (about a
 * tenth of the portable code's time); elsewhere, the portable code below.
 */
#include <stdint.h>
#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void compress_portable(uint32_t state[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = ((uint32_t)block[4 * i] << 24) | ((uint32_t)block[4 * i + 1] << 16) |
               ((uint32_t)block[4 * i + 2] << 8) | (uint32_t)block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

#if defined(__x86_64__) && defined(NOMINAL_SHA_NI)
#include <cpuid.h>
#include <immintrin.h>

/* SHA-NI keeps the state as two vectors, ABEF and CDGH; each `sha256rnds2` does two
 * rounds, taking the two round inputs (W + K) from the low lanes of its third operand.
 * The message schedule is four words at a time: msg1 adds sigma0, the aligned words
 * W[t-7] are added, and msg2 adds sigma1. */
__attribute__((target("sha,sse4.1")))
static void compress_shani(uint32_t state[8], const uint8_t block[64]) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);  /* D C B A */
    __m128i st1 = _mm_loadu_si128((const __m128i *)&state[4]);  /* H G F E */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                          /* C D A B */
    st1 = _mm_shuffle_epi32(st1, 0x1B);                          /* E F G H */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);                  /* A B E F */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                       /* C D G H */
    const __m128i save0 = st0, save1 = st1;
    __m128i w[4];
    for (int i = 0; i < 4; i++)
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * i)), swap);
    for (int t = 0; t < 16; t++) {
        __m128i cur;
        if (t < 4) {
            cur = w[t];
        } else {
            /* w[t % 4] holds W[4t-16 .. 4t-13]; the next three groups follow it. */
            __m128i x = _mm_sha256msg1_epu32(w[t % 4], w[(t + 1) % 4]);
            x = _mm_add_epi32(x, _mm_alignr_epi8(w[(t + 3) % 4], w[(t + 2) % 4], 4));
            cur = _mm_sha256msg2_epu32(x, w[(t + 3) % 4]);
            w[t % 4] = cur;
        }
        __m128i msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&K[4 * t]));
        st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
    }
    st0 = _mm_add_epi32(st0, save0);
    st1 = _mm_add_epi32(st1, save1);
    tmp = _mm_shuffle_epi32(st0, 0x1B);                          /* F E B A */
    st1 = _mm_shuffle_epi32(st1, 0xB1);                          /* D C H G */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);                       /* D C B A */
    st1 = _mm_alignr_epi8(st1, tmp, 8);                          /* H G F E */
    _mm_storeu_si128((__m128i *)&state[0], st0);
    _mm_storeu_si128((__m128i *)&state[4], st1);
}

/* The same compression for two independent blocks at once. Each `sha256rnds2` waits for
 * the one before it in its own chain; interleaving two chains lets the processor run
 * one while the other waits (about 1.5 times the throughput of one chain at a time). */
__attribute__((target("sha,sse4.1")))
static void compress2_shani(uint32_t sa[8], const uint8_t ba[64], uint32_t sb[8],
                            const uint8_t bb[64]) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i ta = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sa[0]), 0xB1);
    __m128i tb = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sb[0]), 0xB1);
    __m128i a1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sa[4]), 0x1B);
    __m128i b1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sb[4]), 0x1B);
    __m128i a0 = _mm_alignr_epi8(ta, a1, 8);
    __m128i b0 = _mm_alignr_epi8(tb, b1, 8);
    a1 = _mm_blend_epi16(a1, ta, 0xF0);
    b1 = _mm_blend_epi16(b1, tb, 0xF0);
    const __m128i sa0 = a0, sa1 = a1, sb0 = b0, sb1 = b1;
    __m128i wa[4], wb[4];
    for (int i = 0; i < 4; i++) {
        wa[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(ba + 16 * i)), swap);
        wb[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(bb + 16 * i)), swap);
    }
    for (int t = 0; t < 16; t++) {
        __m128i ca, cb;
        if (t < 4) {
            ca = wa[t];
            cb = wb[t];
        } else {
            __m128i xa = _mm_sha256msg1_epu32(wa[t % 4], wa[(t + 1) % 4]);
            __m128i xb = _mm_sha256msg1_epu32(wb[t % 4], wb[(t + 1) % 4]);
            xa = _mm_add_epi32(xa, _mm_alignr_epi8(wa[(t + 3) % 4], wa[(t + 2) % 4], 4));
            xb = _mm_add_epi32(xb, _mm_alignr_epi8(wb[(t + 3) % 4], wb[(t + 2) % 4], 4));
            ca = _mm_sha256msg2_epu32(xa, wa[(t + 3) % 4]);
            cb = _mm_sha256msg2_epu32(xb, wb[(t + 3) % 4]);
            wa[t % 4] = ca;
            wb[t % 4] = cb;
        }
        const __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * t]);
        __m128i ma = _mm_add_epi32(ca, k), mb = _mm_add_epi32(cb, k);
        a1 = _mm_sha256rnds2_epu32(a1, a0, ma);
        b1 = _mm_sha256rnds2_epu32(b1, b0, mb);
        ma = _mm_shuffle_epi32(ma, 0x0E);
        mb = _mm_shuffle_epi32(mb, 0x0E);
        a0 = _mm_sha256rnds2_epu32(a0, a1, ma);
        b0 = _mm_sha256rnds2_epu32(b0, b1, mb);
    }
    a0 = _mm_add_epi32(a0, sa0);
    a1 = _mm_add_epi32(a1, sa1);
    b0 = _mm_add_epi32(b0, sb0);
    b1 = _mm_add_epi32(b1, sb1);
    ta = _mm_shuffle_epi32(a0, 0x1B);
    tb = _mm_shuffle_epi32(b0, 0x1B);
    a1 = _mm_shuffle_epi32(a1, 0xB1);
    b1 = _mm_shuffle_epi32(b1, 0xB1);
    _mm_storeu_si128((__m128i *)&sa[0], _mm_blend_epi16(ta, a1, 0xF0));
    _mm_storeu_si128((__m128i *)&sb[0], _mm_blend_epi16(tb, b1, 0xF0));
    _mm_storeu_si128((__m128i *)&sa[4], _mm_alignr_epi8(a1, ta, 8));
    _mm_storeu_si128((__m128i *)&sb[4], _mm_alignr_epi8(b1, tb, 8));
}

static int has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(b & (1u << 29))) return 0;                   /* SHA */
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & (1u << 19)) && (c & (1u << 9));        /* SSE4.1, SSSE3 */
}
#else
static int has_shani(void) { return 0; }
static void compress_shani(uint32_t state[8], const uint8_t block[64]) {
    compress_portable(state, block);
}
static void compress2_shani(uint32_t sa[8], const uint8_t ba[64], uint32_t sb[8],
                            const uint8_t bb[64]) {
    compress_portable(sa, ba);
    compress_portable(sb, bb);
}
#endif

typedef void (*compress_fn)(uint32_t[8], const uint8_t[64]);

/* 1 when the SHA extensions are used; `force_portable` turns them off (for tests). */
int nominal_hmac_uses_shani(int force_portable) { return !force_portable && has_shani(); }

void nominal_hmac_state(const uint8_t block[64], uint32_t out[8], int force_portable) {
    static const uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(out, init, sizeof(init));
    (nominal_hmac_uses_shani(force_portable) ? compress_shani : compress_portable)(out, block);
}

/* The last inner block of a message of `length` bytes whose full blocks are done: the
 * rest, the 0x80 byte and zeros; the bit length (ipad block included) goes in the last
 * 8 bytes, here if `rest` < 56 (the caller compresses the block first otherwise). */
static void inner_tail(const uint8_t *msg, int64_t rest, uint8_t block[64]) {
    memcpy(block, msg, (size_t)rest);
    block[rest] = 0x80;
    memset(block + rest + 1, 0, (size_t)(63 - rest));
}

static void put_length(int64_t length, uint8_t block[64]) {
    uint64_t bits = (uint64_t)(64 + length) * 8;  /* the ipad block counts too */
    for (int j = 0; j < 8; j++) block[63 - j] = (uint8_t)(bits >> (8 * j));
}

/* Outer hash input: the 32-byte inner digest, padding, length 96 bytes (768 bits). */
static void outer_block(const uint32_t state[8], uint8_t block[64]) {
    for (int j = 0; j < 8; j++) {
        block[4 * j] = (uint8_t)(state[j] >> 24);
        block[4 * j + 1] = (uint8_t)(state[j] >> 16);
        block[4 * j + 2] = (uint8_t)(state[j] >> 8);
        block[4 * j + 3] = (uint8_t)state[j];
    }
    block[32] = 0x80;
    memset(block + 33, 0, 29);
    block[62] = 0x03;
    block[63] = 0x00;
}

static void put_hex(const uint32_t state[8], uint8_t *dst, int32_t chars) {
    static const char hex[] = "0123456789abcdef";
    for (int j = 0; j < chars; j++)
        dst[j] = (uint8_t)hex[(state[j / 8] >> (28 - 4 * (j % 8))) & 0xF];
}

static void hmac_one(const uint8_t *msg, int64_t length, const uint32_t inner[8],
                     const uint32_t outer[8], int32_t chars, uint8_t *dst, compress_fn compress) {
    uint8_t block[64];
    uint32_t state[8];
    memcpy(state, inner, sizeof(state));
    int64_t pos = 0;
    for (; length - pos >= 64; pos += 64) compress(state, msg + pos);
    int64_t rest = length - pos;
    inner_tail(msg + pos, rest, block);
    if (rest >= 56) {  /* no room for the length: it goes in one more block */
        compress(state, block);
        memset(block, 0, 64);
    }
    put_length(length, block);
    compress(state, block);
    outer_block(state, block);
    memcpy(state, outer, sizeof(state));
    compress(state, block);
    put_hex(state, dst, chars);
}

void nominal_hmac_hex(const uint8_t *data, const int32_t *offsets, int64_t n,
                      const uint32_t inner[8], const uint32_t outer[8], int32_t chars,
                      uint8_t *out, int force_portable) {
    int shani = nominal_hmac_uses_shani(force_portable);
    compress_fn compress = shani ? compress_shani : compress_portable;
    int64_t r = 0;
    /* With the SHA extensions, two values of under 56 bytes (one inner block each, the
     * usual case: ids) are hashed side by side; any other value on its own. */
    while (shani && r + 1 < n) {
        int64_t la = (int64_t)offsets[r + 1] - offsets[r];
        int64_t lb = (int64_t)offsets[r + 2] - offsets[r + 1];
        if (la >= 56 || lb >= 56) {
            hmac_one(data + offsets[r], la, inner, outer, chars, out + r * chars, compress);
            r++;
            continue;
        }
        uint8_t ba[64], bb[64];
        uint32_t sa[8], sb[8];
        inner_tail(data + offsets[r], la, ba);
        inner_tail(data + offsets[r + 1], lb, bb);
        put_length(la, ba);
        put_length(lb, bb);
        memcpy(sa, inner, sizeof(sa));
        memcpy(sb, inner, sizeof(sb));
        compress2_shani(sa, ba, sb, bb);
        outer_block(sa, ba);
        outer_block(sb, bb);
        memcpy(sa, outer, sizeof(sa));
        memcpy(sb, outer, sizeof(sb));
        compress2_shani(sa, ba, sb, bb);
        put_hex(sa, out + r * chars, chars);
        put_hex(sb, out + (r + 1) * chars, chars);
        r += 2;
    }
    for (; r < n; r++)
        hmac_one(data + offsets[r], (int64_t)offsets[r + 1] - offsets[r], inner, outer, chars,
                 out + r * chars, compress);
}

/* Whether a space in buf[0..n) stands next to a byte that can start or end a CSV field
 * (boundary[b] != 0: the delimiter's bytes, the quote, CR, LF). A field value can only
 * begin or end with a space where the file has one of those, so a file without any
 * has no value that trimming would change (nominal.ingest.readers.TextScan).
 * `before` is the byte just before the buffer (a boundary at the start of the file);
 * a space as the last byte is left to the caller, who knows the byte after it. */
int nominal_space_at_boundary(const uint8_t *buf, int64_t n, const uint8_t boundary[256],
                              int before) {
    const uint8_t *p = buf, *end = buf + n;
    while (p < end && (p = memchr(p, ' ', (size_t)(end - p))) != NULL) {
        uint8_t prev = p > buf ? p[-1] : (uint8_t)before;
        if (boundary[prev] || (p + 1 < end && boundary[p[1]])) return 1;
        p++;
    }
    return 0;
}
