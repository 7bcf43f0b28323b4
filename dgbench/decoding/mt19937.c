/* The CPU generator's MT19937 stream (ATen's at::mt19937, aten/src/ATen/core/MT19937RNGEngine.h), advanced
 * and read as ATen does, for dgbench/decoding/mt19937.py.
 *
 * ATen's engine: each 32-bit output does `if (--left == 0) next_state();` then tempers state[next++];
 * next_state() regenerates all 624 words and sets left = 624, next = 0. random64() is two outputs,
 * (first << 32) | second. A uniform double or an int64 random_() keeps that value's low 53 / 63 bits.
 *
 * What this file adds is speed, not a different stream: the 624-word regeneration and the tempering are
 * plain loops over arrays that the compiler vectorizes, and outputs nobody reads are skipped without being
 * tempered. The loader probes the result against torch itself before using it (mt19937.py). */

#include <stdint.h>

#define MT_N 624
#define MT_M 397
#define MATRIX_A 0x9908b0dfU
#define UPPER_MASK 0x80000000U
#define LOWER_MASK 0x7fffffffU
#define LOW_53 ((UINT64_C(1) << 53) - 1)

static inline uint32_t twist(uint32_t u, uint32_t v) {
    /* ATen: (mixbits(u, v) >> 1) ^ (v & 1 ? MATRIX_A : 0), written without a branch */
    return (((u & UPPER_MASK) | (v & LOWER_MASK)) >> 1) ^ ((uint32_t)(-(int32_t)(v & 1U)) & MATRIX_A);
}

static void next_state(uint32_t *s) {
    int i;
    for (i = 0; i < MT_N - MT_M; i++) s[i] = s[i + MT_M] ^ twist(s[i], s[i + 1]);
    for (; i < MT_N - 1; i++) s[i] = s[i + MT_M - MT_N] ^ twist(s[i], s[i + 1]);
    s[MT_N - 1] = s[MT_M - 1] ^ twist(s[MT_N - 1], s[0]);
}

static inline uint32_t temper(uint32_t y) {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

typedef struct {
    uint32_t *s;
    int64_t left;
    int64_t next;
} engine;

/* Advance by `count` outputs; write them (tempered) to `out` unless it is NULL. */
static void advance(engine *e, int64_t count, uint32_t *out) {
    while (count > 0) {
        if (e->left == 1) {            /* this output regenerates the state first */
            next_state(e->s);
            e->left = MT_N;
            e->next = 0;
            if (out) *out++ = temper(e->s[0]);
            e->next = 1;
            count--;
            continue;
        }
        int64_t k = e->left - 1 < count ? e->left - 1 : count;
        if (out) {
            const uint32_t *src = e->s + e->next;
            for (int64_t j = 0; j < k; j++) out[j] = temper(src[j]);
            out += k;
        }
        e->left -= k;
        e->next += k;
        count -= k;
    }
}

/* Draw `n_rows * row_len` random64() values (the stream a (n_rows, row_len) float64 rand or int64 random_
 * consumes) and return, for the `n_sel` rows listed ascending in `rows`, each value's low 53 bits in `out`
 * (n_sel, row_len). `state` (624 words), `left` and `next` are read and updated in place. `scratch` holds
 * 2 * row_len words. Returns 0, or -1 if `rows` is not ascending and within range. */
int mt_draw_rows(uint32_t *state, int64_t *left, int64_t *next, int64_t n_rows, int64_t row_len,
                 const int64_t *rows, int64_t n_sel, int64_t *out, uint32_t *scratch) {
    engine e = {state, *left, *next};
    int64_t position = 0;                     /* in rows */
    for (int64_t i = 0; i < n_sel; i++) {
        int64_t r = rows[i];
        if (r < position || r >= n_rows) return -1;
        advance(&e, 2 * (r - position) * row_len, 0);
        advance(&e, 2 * row_len, scratch);
        for (int64_t j = 0; j < row_len; j++) {
            uint64_t v = ((uint64_t)scratch[2 * j] << 32) | scratch[2 * j + 1];
            out[i * row_len + j] = (int64_t)(v & LOW_53);
        }
        position = r + 1;
    }
    advance(&e, 2 * (n_rows - position) * row_len, 0);
    *left = e.left;
    *next = e.next;
    return 0;
}
