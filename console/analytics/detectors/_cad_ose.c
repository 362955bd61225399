/*
 * CAD OSE (NAB's "contextOSE") compiled: the same detector as the pure-Python port in
 * context_ose.py, score for score, at a few microseconds a step.
 *
 * Why a compiled core: the live console steps one CAD OSE per series, 64 series together, and
 * the whole ensemble must cost at most 50 us per series per step; the Python port costs about
 * 50 us a step on a series that stays in one bin and hundreds on noise filling its range.
 *
 * What must stay identical (context_ose.py says why each matters for NAB's recorded scores):
 *  - contexts ranked by (count, Python 2 tuple hash of the left facts, of the right facts);
 *  - new contexts numbered in Python 2's dict iteration order of a left side's contexts (the
 *    open-addressing slot order, emulated here by keeping each left side's real slot table);
 *  - left and right sides found by the Python 2 hash of their facts (collisions included);
 *  - the quantisation, including the original's string quirks for values outside the range;
 *  - an unknown value (NaN, infinity) scores NaN and leaves the memory alone;
 *  - the rest period (below 1: silent for good), the memory bound (max_contexts, replay).
 *
 * The structure follows the original's step, with indexes in place of its scans: each left
 * side is filed under its largest fact (a left side fully inside the previous group is found
 * from the group's own facts); the left sides holding a zero-level context (only they make
 * candidate contexts) are kept in id order with their small facts packed beside them, and
 * filed under each of their neuron facts, so their overlaps with the group come from the
 * group's neurons; membership in the group is a bit mask for small sensor facts and a stamp
 * per context id for neuron facts; candidates are told apart by bit masks, and their facts
 * and hashes made only for the distinct ones.
 *
 * Settings: those of the Python port, with num_norm_value_bits in 1..30 and
 * max_active_neurons in 1..64 (outside them the Python port fails too, or needs 2**bits of
 * memory); a ValueError names the setting.
 *
 * Self-contained: the CPython C API and the C standard library only.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NEURON_BASE ((int64_t)1 << 31) /* neuron facts are 2**31 + context id */
#define SMALL 64                       /* facts below this live in a 64-bit mask */

/* Many detectors step in turn (one per series), so a detector's memory is seldom in cache when
 * its step comes: the loops below gather independent loads and prefetch them. */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)0)
#endif

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Python 2.7's hash() of a tuple of non-negative ints (64-bit build). */
static int64_t
py2_hash(const int64_t *items, Py_ssize_t n)
{
    uint64_t x = 0x345678u, mult = 1000003u;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t rest = (uint64_t)(n - 1 - i);
        x = (x ^ (uint64_t)items[i]) * mult;
        mult += 82520u + rest + rest;
    }
    x += 97531u;
    int64_t h = (int64_t)x;
    return h == -1 ? -2 : h;
}

static inline int
popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

static int
grow(void **buf, Py_ssize_t *cap, Py_ssize_t need, size_t item)
{
    if (need <= *cap)
        return 0;
    Py_ssize_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = PyMem_Realloc(*buf, (size_t)n * item);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

#define GROW(arr, cap, need) ((need) <= (cap) ? 0 : grow((void **)&(arr), &(cap), (need), sizeof(*(arr))))

/* An int64 -> int32 map (open addressing); the maps from a Python 2 hash to a side's id. */
typedef struct {
    int64_t *keys;
    int32_t *vals; /* -1: empty */
    Py_ssize_t cap, used;
} Map;

static inline uint64_t
mix64(uint64_t z)
{
    z ^= z >> 33;
    z *= 0xff51afd7ed558ccdULL;
    z ^= z >> 33;
    z *= 0xc4ceb9fe1a85ec53ULL;
    z ^= z >> 33;
    return z;
}

static int32_t
map_get(const Map *m, int64_t key)
{
    if (m->cap == 0)
        return -1;
    uint64_t mask = (uint64_t)m->cap - 1, i = mix64((uint64_t)key) & mask;
    while (m->vals[i] >= 0) {
        if (m->keys[i] == key)
            return m->vals[i];
        i = (i + 1) & mask;
    }
    return -1;
}

static int map_put(Map *m, int64_t key, int32_t val);

static int
map_resize(Map *m, Py_ssize_t cap)
{
    Map n = {NULL, NULL, cap, 0};
    n.keys = PyMem_Malloc((size_t)cap * sizeof(int64_t));
    n.vals = PyMem_Malloc((size_t)cap * sizeof(int32_t));
    if (n.keys == NULL || n.vals == NULL) {
        PyMem_Free(n.keys);
        PyMem_Free(n.vals);
        PyErr_NoMemory();
        return -1;
    }
    memset(n.vals, 0xff, (size_t)cap * sizeof(int32_t));
    for (Py_ssize_t i = 0; i < m->cap; i++)
        if (m->vals[i] >= 0)
            map_put(&n, m->keys[i], m->vals[i]);
    PyMem_Free(m->keys);
    PyMem_Free(m->vals);
    *m = n;
    return 0;
}

static int
map_put(Map *m, int64_t key, int32_t val)
{
    if ((m->used + 1) * 2 > m->cap && map_resize(m, m->cap ? m->cap * 2 : 64) < 0)
        return -1;
    uint64_t mask = (uint64_t)m->cap - 1, i = mix64((uint64_t)key) & mask;
    while (m->vals[i] >= 0)
        i = (i + 1) & mask;
    m->keys[i] = key;
    m->vals[i] = val;
    m->used++;
    return 0;
}

static void
map_clear(Map *m)
{
    if (m->cap)
        memset(m->vals, 0xff, (size_t)m->cap * sizeof(int32_t));
    m->used = 0;
}

static void
map_free(Map *m)
{
    PyMem_Free(m->keys);
    PyMem_Free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->used = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The detector's memory                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* One left semi-context. Its contexts live in a copy of the Python 2 dict's slot table
 * (right id, context id per slot), so iterating the slots is Python 2's iteration order. */
typedef struct {
    /* read every step the side is met (the first 64 bytes) */
    Py_ssize_t foff;   /* facts (sorted) at arena[foff:foff+nf] */
    int32_t nf, nsmall; /* facts below SMALL come first */
    int32_t nhuge;     /* sensor facts >= SMALL (a value far out of range): checked one by one */
    int32_t nzero;     /* zero-level contexts */
    int32_t used;      /* contexts */
    int32_t zdirty;    /* zord must be rebuilt from the slots (a zero-level context added, or
                        * the table grown, which moves every slot) */
    int32_t *dense;    /* its (context id, right id) in creation order (used pairs); NULL: dinl */
    int32_t *zord;     /* its zero-level context ids in slot order (nzero); NULL: zinl */
    int32_t dinl[4];
    /* read when it changes */
    int32_t zinl[2];
    int32_t dcap, zcap;
    int64_t hash;
    uint64_t smask;    /* the facts below SMALL as a bit mask */
    uint32_t mask;     /* slot table size - 1 */
    int32_t *slots;    /* NULL: the inline table; else 2 * (mask + 1) ints */
    int32_t inl[16];   /* the first table, 8 slots */
} Left;

/* Append v to a left side's list (inline buffer first). */
static int
list_push(int32_t **p, int32_t *cap, int32_t *inl, int32_t inl_cap, int32_t n, int32_t v)
{
    int32_t *buf = *p ? *p : inl;
    int32_t c = *p ? *cap : inl_cap;
    if (n == c) {
        int32_t nc = c * 2;
        int32_t *fresh = PyMem_Malloc((size_t)nc * sizeof(int32_t));
        if (fresh == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(fresh, buf, (size_t)n * sizeof(int32_t));
        if (*p)
            PyMem_Free(*p);
        *p = fresh;
        *cap = nc;
        buf = fresh;
    }
    buf[n] = v;
    return 0;
}

typedef struct {
    int64_t hash;
    Py_ssize_t foff;
    int32_t nf;
    int32_t big;       /* has a fact >= SMALL (far out of range): checked fact by fact */
    uint64_t smask;
} Right;

/* One context (packed: a step that touches a context touches one cache line). */
typedef struct {
    int64_t lh, rh;    /* Python 2 hashes of its left and right facts (they break ties) */
    uint32_t cnt;      /* how many steps it was active */
    int32_t right, left;
    uint8_t zero;      /* zero-level */
} Ctx;

/* What finding the left sides inside a group reads of each left side, packed. */
typedef struct {
    uint64_t smask;    /* its facts below SMALL */
    uint64_t sig;      /* a one-bit-per-fact signature of its other facts: a side whose
                        * signature the group's does not cover is not inside the group */
} LTop;

/* A growable list of ints. */
typedef struct {
    int32_t *v;
    int32_t n, cap;
} IVec;

static int
ivec_push(IVec *z, int32_t x)
{
    if (z->n == z->cap) {
        int32_t nc = z->cap ? 2 * z->cap : 4;
        int32_t *p = PyMem_Realloc(z->v, (size_t)nc * sizeof(int32_t));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        z->v = p;
        z->cap = nc;
    }
    z->v[z->n++] = x;
    return 0;
}

typedef struct {
    PyObject_HEAD
    /* settings */
    double min_value, max_value, step_size, base_threshold;
    PyObject *rest_period;
    long long rest_k;
    int max_left_len, max_active, num_bits;
    long long max_contexts, replay;
    long long n_rebuilds;
    /* rest period */
    long long n_history, last_high;

    /* memory */
    int64_t *arena;    Py_ssize_t arena_n, arena_cap;   /* facts of left and right sides */
    Left *left;        Py_ssize_t n_left, left_cap;
    LTop *ltop;        Py_ssize_t ltop_cap;    /* per left side */
    Map left_map, right_map;
    Right *right;      Py_ssize_t n_right, right_cap;
    int64_t *rarena;   Py_ssize_t rarena_n, rarena_cap; /* facts of right sides */
    /* contexts, by id */
    Ctx *ctx;
    uint32_t *nstamp;  /* == stamp: neuron fact of this context id is in the group */
    IVec *topv;        /* ids of the left sides whose largest fact is this context's neuron */
    IVec *zn;          /* zero-level left sides holding this context's neuron */
    uint32_t *ov_stamp; /* per left side: == stamp when ov_n counts this step's overlap */
    uint64_t *ov_bits; Py_ssize_t ov_cap, ov_stamp_cap; /* which of the group's neurons it holds */
    /* candidates by key when every fact of the group and the present is a small sensor fact or
     * a neuron: (left overlap's small facts, its neurons as bits of the group's neuron
     * positions, right overlap's small facts) name the overlaps exactly, without their facts */
    uint64_t *pk;      Py_ssize_t pk_cap;       /* 3 words per candidate */
    Py_ssize_t n_ctx, ctx_cap;
    IVec smallv[SMALL]; /* ... whose largest fact is this small sensor fact */
    IVec hugev;        /* ... whose largest fact is a sensor fact >= SMALL */
    int32_t *cand;     Py_ssize_t cand_cap;
    int32_t *zl;       Py_ssize_t n_zl, zl_cap;  /* sorted ids of left sides with a zero-level context */
    uint64_t *zl_smask; Py_ssize_t zl_smask_cap; /* and, packed in the same order, their small facts, */
    int32_t *zl_nf;    Py_ssize_t zl_nf_cap;     /* number of facts */
    int32_t *zl_nhuge; Py_ssize_t zl_nhuge_cap;  /* and of far out-of-range sensor facts */
    int64_t *group;    Py_ssize_t group_n, group_cap;
    int64_t group_hash;
    Py_ssize_t n_left_crossed;
    uint32_t stamp;

    /* scratch, per step */
    int64_t *sens;     Py_ssize_t sens_n, sens_cap;
    uint8_t *rfull;    Py_ssize_t rfull_cap;
    Py_ssize_t *rc_off; Py_ssize_t rc_off_cap;
    int32_t *rc_n;     Py_ssize_t rc_n_cap;
    int64_t *rc_hash;  Py_ssize_t rc_hash_cap;
    uint32_t *rc_hstamp; Py_ssize_t rc_hstamp_cap;
    int64_t *rcf;      Py_ssize_t rcf_n, rcf_cap;     /* right sides' overlaps with the present */
    int32_t *act;      Py_ssize_t act_cap;
    int32_t best[64];
    /* candidate contexts (pots): left overlap facts in pf, right overlap = a right's rc */
    int64_t *pf;       Py_ssize_t pf_n, pf_cap;
    Py_ssize_t *p_loff; Py_ssize_t p_loff_cap;
    int32_t *p_ln;     Py_ssize_t p_ln_cap;
    int64_t *p_lh;     Py_ssize_t p_lh_cap;
    int32_t *p_rid;    Py_ssize_t p_rid_cap;
    Py_ssize_t n_pot;
    uint32_t *pt_gen; int32_t *pt_idx; Py_ssize_t pt_cap; uint32_t pt_g;

    /* the last ``replay`` sensor patterns (a ring) for a rebuild */
    int64_t **recent; int32_t *recent_n; int32_t *recent_cap;
    Py_ssize_t recent_len, recent_head;
} Core;

static inline int32_t *
slots_of(Left *L)
{
    return L->slots ? L->slots : L->inl;
}

/* Python 2's slot for a new key, as context_ose._SlotOrder._place. */
static void
slot_place(int32_t *slots, uint32_t mask, int32_t key, int32_t cid)
{
    uint64_t i = (uint64_t)key & mask;
    if (slots[2 * i] >= 0) {
        uint64_t perturb = (uint64_t)key;
        for (;;) {
            i = (i << 2) + i + perturb + 1;
            if (slots[2 * (i & mask)] < 0) {
                i &= mask;
                break;
            }
            perturb >>= 5;
        }
    }
    slots[2 * i] = key;
    slots[2 * i + 1] = cid;
}

static int32_t
slot_get(Left *L, int32_t key)
{
    int32_t *slots = slots_of(L);
    uint32_t mask = L->mask;
    uint64_t i = (uint64_t)key & mask, perturb = (uint64_t)key;
    for (;;) {
        int32_t k = slots[2 * (i & mask)];
        if (k == key)
            return slots[2 * (i & mask) + 1];
        if (k < 0)
            return -1;
        i = (i << 2) + i + perturb + 1;
        perturb >>= 5;
    }
}

static int
slot_add(Left *L, int32_t key, int32_t cid)
{
    if (list_push(&L->dense, &L->dcap, L->dinl, 4, 2 * L->used, cid) < 0
        || list_push(&L->dense, &L->dcap, L->dinl, 4, 2 * L->used + 1, key) < 0)
        return -1;
    slot_place(slots_of(L), L->mask, key, cid);
    L->used++;
    if ((int64_t)L->used * 3 < ((int64_t)L->mask + 1) * 2)
        return 0;
    int64_t size = 8;
    while (size <= 4 * (int64_t)L->used)
        size <<= 1;
    int32_t *fresh = PyMem_Malloc((size_t)size * 2 * sizeof(int32_t));
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int64_t i = 0; i < size; i++)
        fresh[2 * i] = -1;
    int32_t *old = slots_of(L);
    for (uint64_t i = 0; i <= L->mask; i++)
        if (old[2 * i] >= 0)
            slot_place(fresh, (uint32_t)(size - 1), old[2 * i], old[2 * i + 1]);
    if (L->slots)
        PyMem_Free(L->slots);
    L->slots = fresh;
    L->mask = (uint32_t)(size - 1);
    L->zdirty = 1;
    return 0;
}

static void
clear_memory(Core *s)
{
    for (Py_ssize_t i = 0; i < s->n_left; i++) {
        PyMem_Free(s->left[i].slots);
        PyMem_Free(s->left[i].dense);
        PyMem_Free(s->left[i].zord);
    }
    s->n_left = 0;
    s->arena_n = 0;
    s->rarena_n = 0;
    s->n_right = 0;
    for (Py_ssize_t i = 0; i < s->n_ctx; i++) {
        PyMem_Free(s->zn[i].v);
        PyMem_Free(s->topv[i].v);
    }
    map_clear(&s->left_map);
    map_clear(&s->right_map);
    s->n_ctx = 0;
    for (int i = 0; i < SMALL; i++)
        s->smallv[i].n = 0;
    s->hugev.n = 0;
    s->n_zl = 0;
    s->group_n = 0;
    s->group_hash = 0;
    s->n_left_crossed = 0;
}

/* The signature bit of a fact >= SMALL (a Fibonacci hash to one of 64 bits). */
static inline uint64_t
fact_sig(int64_t f)
{
    return (uint64_t)1 << (((uint64_t)f * 0x9E3779B97F4A7C15ULL) >> 58);
}

/* Is fact f in the group the stamps and ``gsmask`` describe? */
static inline int
in_group(const Core *s, int64_t f, uint64_t gsmask)
{
    if (f < SMALL)
        return (int)((gsmask >> f) & 1u);
    if (f >= NEURON_BASE) {
        int64_t cid = f - NEURON_BASE;
        return cid < s->n_ctx && s->nstamp[cid] == s->stamp;
    }
    /* a sensor fact of a value far out of range: rare, searched */
    Py_ssize_t lo = 0, hi = s->group_n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (s->group[mid] < f)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->group_n && s->group[lo] == f;
}

static int32_t
new_left(Core *s, const int64_t *facts, int32_t nf, int64_t hash)
{
    if (GROW(s->left, s->left_cap, s->n_left + 1) < 0 || GROW(s->arena, s->arena_cap, s->arena_n + nf) < 0
        || GROW(s->ltop, s->ltop_cap, s->n_left + 1) < 0)
        return -1;
    int32_t lid = (int32_t)s->n_left;
    if (map_put(&s->left_map, hash, lid) < 0)
        return -1;
    Left *L = &s->left[lid];
    memset(L, 0, sizeof(*L));
    L->hash = hash;
    L->foff = s->arena_n;
    memcpy(s->arena + s->arena_n, facts, (size_t)nf * sizeof(int64_t));
    s->arena_n += nf;
    L->nf = nf;
    int32_t ns = 0;
    uint64_t m = 0;
    while (ns < nf && facts[ns] < SMALL)
        m |= (uint64_t)1 << facts[ns++];
    L->nsmall = ns;
    L->smask = m;
    L->nhuge = 0;
    for (int32_t i = ns; i < nf && facts[i] < NEURON_BASE; i++)
        L->nhuge++;
    s->ltop[lid].smask = m;
    uint64_t sig = 0;
    for (int32_t i = ns; i < nf; i++)
        sig |= fact_sig(facts[i]);
    s->ltop[lid].sig = sig;
    L->mask = 7;
    L->slots = NULL;
    for (int i = 0; i < 8; i++)
        L->inl[2 * i] = -1;
    s->n_left++;
    int64_t top = facts[nf - 1];
    IVec *under = top < SMALL ? &s->smallv[top]
                  : top >= NEURON_BASE ? &s->topv[top - NEURON_BASE] : &s->hugev;
    if (ivec_push(under, lid) < 0)
        return -1;
    return lid;
}

static int32_t
new_right(Core *s, const int64_t *facts, int32_t nf, int64_t hash)
{
    if (GROW(s->right, s->right_cap, s->n_right + 1) < 0
        || GROW(s->rarena, s->rarena_cap, s->rarena_n + nf) < 0)
        return -1;
    int32_t rid = (int32_t)s->n_right;
    if (map_put(&s->right_map, hash, rid) < 0)
        return -1;
    Right *R = &s->right[rid];
    R->hash = hash;
    R->foff = s->rarena_n;
    R->nf = nf;
    memcpy(s->rarena + s->rarena_n, facts, (size_t)nf * sizeof(int64_t));
    s->rarena_n += nf;
    R->big = facts[nf - 1] >= SMALL;
    R->smask = 0;
    for (int32_t i = 0; i < nf && facts[i] < SMALL; i++)
        R->smask |= (uint64_t)1 << facts[i];
    s->n_right++;
    return rid;
}

static int
mark_zero(Core *s, int32_t lid)
{
    Left *L = &s->left[lid];
    L->zdirty = 1;
    if (L->nzero++ == 0) {
        if (GROW(s->zl, s->zl_cap, s->n_zl + 1) < 0 || GROW(s->zl_smask, s->zl_smask_cap, s->n_zl + 1) < 0
            || GROW(s->zl_nf, s->zl_nf_cap, s->n_zl + 1) < 0
            || GROW(s->zl_nhuge, s->zl_nhuge_cap, s->n_zl + 1) < 0)
            return -1;
        Py_ssize_t lo = 0, hi = s->n_zl;
        while (lo < hi) {
            Py_ssize_t mid = (lo + hi) / 2;
            if (s->zl[mid] < lid)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t tail = (size_t)(s->n_zl - lo);
        memmove(s->zl + lo + 1, s->zl + lo, tail * sizeof(int32_t));
        memmove(s->zl_smask + lo + 1, s->zl_smask + lo, tail * sizeof(uint64_t));
        memmove(s->zl_nf + lo + 1, s->zl_nf + lo, tail * sizeof(int32_t));
        memmove(s->zl_nhuge + lo + 1, s->zl_nhuge + lo, tail * sizeof(int32_t));
        s->zl[lo] = lid;
        s->zl_smask[lo] = L->smask;
        s->zl_nf[lo] = L->nf;
        s->zl_nhuge[lo] = L->nhuge;
        s->n_zl++;
        /* file it under each of its neuron facts, for the overlaps with a group */
        L = &s->left[lid];
        const int64_t *lf = s->arena + L->foff;
        for (int32_t i = L->nsmall + L->nhuge; i < L->nf; i++) {
            if (ivec_push(&s->zn[lf[i] - NEURON_BASE], lid) < 0)
                return -1;
        }
    }
    return 0;
}

static int
grow_contexts(Core *s, Py_ssize_t need)
{
    if (need <= s->ctx_cap)
        return 0;
    Py_ssize_t n = s->ctx_cap ? s->ctx_cap : 1024;
    while (n < need)
        n *= 2;
#define RE(p, T)                                                      \
    do {                                                              \
        void *q = PyMem_Realloc((p), (size_t)n * sizeof(T));          \
        if (q == NULL) {                                              \
            PyErr_NoMemory();                                         \
            return -1;                                                \
        }                                                             \
        (p) = q;                                                      \
    } while (0)
    RE(s->ctx, Ctx);
    RE(s->zn, IVec);
    RE(s->nstamp, uint32_t);
    RE(s->topv, IVec);
#undef RE
    s->ctx_cap = n;
    return 0;
}

/* Find or create the context left -> right; 1 if created, 0 if not, -1 on error. A zero-level
 * lookup of an existing context marks it zero-level (the original's zerolevel=1). */
static int
context(Core *s, const int64_t *lf, int32_t ln, int64_t lh, const int64_t *rf, int32_t rn,
        int64_t rh, int zero_level)
{
    int32_t lid = map_get(&s->left_map, lh);
    if (lid < 0 && (lid = new_left(s, lf, ln, lh)) < 0)
        return -1;
    int32_t rid = map_get(&s->right_map, rh);
    if (rid < 0 && (rid = new_right(s, rf, rn, rh)) < 0)
        return -1;
    Left *L = &s->left[lid];
    int32_t cid = slot_get(L, rid);
    if (cid < 0) {
        if (s->n_ctx >= INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "too many contexts");
            return -1;
        }
        if (grow_contexts(s, s->n_ctx + 1) < 0)
            return -1;
        cid = (int32_t)s->n_ctx++;
        Ctx *c = &s->ctx[cid];
        c->cnt = 0;
        c->lh = L->hash;
        c->rh = s->right[rid].hash;
        c->zero = (uint8_t)(zero_level != 0);
        c->right = rid;
        c->left = lid;
        s->zn[cid].v = NULL;
        s->zn[cid].n = s->zn[cid].cap = 0;
        s->nstamp[cid] = 0;
        s->topv[cid].v = NULL;
        s->topv[cid].n = s->topv[cid].cap = 0;
        if (slot_add(&s->left[lid], rid, cid) < 0)
            return -1;
        if (zero_level && mark_zero(s, lid) < 0)
            return -1;
        return 1;
    }
    if (zero_level && !s->ctx[cid].zero) {
        s->ctx[cid].zero = 1;
        if (mark_zero(s, lid) < 0)
            return -1;
    }
    return 0;
}

/* A left side's zero-level context ids in Python 2 dict order (its slot order). */
static const int32_t *
zord_of(Core *s, Left *L)
{
    if (L->zdirty) {
        int32_t cap = L->zord ? L->zcap : 2;
        if (L->nzero > cap) {
            int32_t nc = cap;
            while (nc < L->nzero)
                nc *= 2;
            int32_t *fresh = PyMem_Realloc(L->zord, (size_t)nc * sizeof(int32_t));
            if (fresh == NULL) {
                PyErr_NoMemory();
                return NULL;
            }
            L->zord = fresh;
            L->zcap = nc;
        }
        int32_t *out = L->zord ? L->zord : L->zinl;
        const int32_t *sl = slots_of(L);
        int32_t k = 0;
        for (uint32_t i = 0; i <= L->mask; i++)
            if (sl[2 * i] >= 0 && s->ctx[sl[2 * i + 1]].zero)
                out[k++] = sl[2 * i + 1];
        L->zdirty = 0;
    }
    return L->zord ? L->zord : L->zinl;
}

/* (count, left hash, right hash) of context a above that of context b? */
static inline int
ranks_above(const Core *s, int32_t a, int32_t b)
{
    const Ctx *x = &s->ctx[a], *y = &s->ctx[b];
    if (x->cnt != y->cnt)
        return x->cnt > y->cnt;
    if (x->lh != y->lh)
        return x->lh > y->lh;
    return x->rh > y->rh;
}

static int
cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static inline int64_t
rc_hash_of(Core *s, int32_t rid)
{
    if (s->rc_hstamp[rid] != s->stamp) {
        s->rc_hstamp[rid] = s->stamp;
        s->rc_hash[rid] = py2_hash(s->rcf + s->rc_off[rid], s->rc_n[rid]);
    }
    return s->rc_hash[rid];
}

static int
same_facts(const int64_t *a, Py_ssize_t na, const int64_t *b, Py_ssize_t nb)
{
    return na == nb && memcmp(a, b, (size_t)na * sizeof(int64_t)) == 0;
}

/* The candidate table: index of the candidate equal to (lf, rf), or -1; with ``add`` the
 * candidate ``add_idx`` is filed when absent. */
static Py_ssize_t
pot_find(Core *s, const int64_t *lf, int32_t ln, int64_t lh, const int64_t *rf, int32_t rn,
         int64_t rh, Py_ssize_t add_idx)
{
    uint64_t mask = (uint64_t)s->pt_cap - 1;
    uint64_t i = mix64((uint64_t)lh * 31u + (uint64_t)rh) & mask;
    for (;;) {
        if (s->pt_gen[i] != s->pt_g) {
            if (add_idx >= 0) {
                s->pt_gen[i] = s->pt_g;
                s->pt_idx[i] = (int32_t)add_idx;
            }
            return -1;
        }
        Py_ssize_t k = s->pt_idx[i];
        int32_t r = s->p_rid[k];
        if (s->p_lh[k] == lh && rc_hash_of(s, r) == rh
            && same_facts(s->pf + s->p_loff[k], s->p_ln[k], lf, ln)
            && same_facts(s->rcf + s->rc_off[r], s->rc_n[r], rf, rn))
            return k;
        i = (i + 1) & mask;
    }
}

/* Grow the candidate table (shared by both ways of filing candidates) to hold ``n_items`` at
 * half load, emptied: 1 if it grew (the caller files its candidates again), 0 if it was large
 * enough, -1 on a memory error. */
static int
cand_table_grow(Core *s, Py_ssize_t n_items)
{
    if ((n_items + 1) * 2 <= s->pt_cap)
        return 0;
    Py_ssize_t cap = s->pt_cap ? s->pt_cap : 256;
    while ((n_items + 1) * 2 > cap)
        cap *= 2;
    uint32_t *g = PyMem_Realloc(s->pt_gen, (size_t)cap * sizeof(uint32_t));
    if (g == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->pt_gen = g;
    int32_t *x = PyMem_Realloc(s->pt_idx, (size_t)cap * sizeof(int32_t));
    if (x == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->pt_idx = x;
    memset(s->pt_gen, 0, (size_t)cap * sizeof(uint32_t));
    s->pt_cap = cap;
    return 1;
}

static int
pot_table_reserve(Core *s, Py_ssize_t n_items)
{
    int grew = cand_table_grow(s, n_items);
    if (grew <= 0)
        return grew;
    Py_ssize_t cap = s->pt_cap;
    /* re-file the candidates so far */
    s->pt_g++;
    if (s->pt_g == 0) {
        memset(s->pt_gen, 0, (size_t)cap * sizeof(uint32_t));
        s->pt_g = 1;
    }
    for (Py_ssize_t k = 0; k < s->n_pot; k++) {
        int32_t r = s->p_rid[k];
        pot_find(s, s->pf + s->p_loff[k], s->p_ln[k], s->p_lh[k], s->rcf + s->rc_off[r],
                 s->rc_n[r], rc_hash_of(s, r), k);
    }
    return 0;
}

/* The candidate table by key (see Core.pk): index of the candidate with this key, or -1; with
 * ``add_idx`` >= 0 that candidate is filed when absent. */
static Py_ssize_t
key_find(Core *s, uint64_t a, uint64_t b, uint64_t c, Py_ssize_t add_idx)
{
    uint64_t mask = (uint64_t)s->pt_cap - 1;
    uint64_t i = mix64(a * 0x9E3779B97F4A7C15ULL ^ mix64(b ^ (c * 31u))) & mask;
    for (;;) {
        if (s->pt_gen[i] != s->pt_g) {
            if (add_idx >= 0) {
                s->pt_gen[i] = s->pt_g;
                s->pt_idx[i] = (int32_t)add_idx;
            }
            return -1;
        }
        Py_ssize_t k = s->pt_idx[i];
        const uint64_t *key = s->pk + 3 * k;
        if (key[0] == a && key[1] == b && key[2] == c)
            return k;
        i = (i + 1) & mask;
    }
}

static int
key_table_reserve(Core *s, Py_ssize_t n_items)
{
    int grew = cand_table_grow(s, n_items);
    if (grew <= 0)
        return grew;
    s->pt_g = 1;
    for (Py_ssize_t k = 0; k < s->n_pot; k++)
        key_find(s, s->pk[3 * k], s->pk[3 * k + 1], s->pk[3 * k + 2], k);
    return 0;
}

/* One step of the original's step() on the sensor facts ``sens``: the share of the selected
 * contexts that came true and the share of candidate contexts that were new. */
static int
learn(Core *s, const int64_t *sens, int32_t ns, double *selected_active, double *added_share)
{
    int flag = 0;
    int64_t skip = 0; /* the original skips id newContextID, False (== 0) when none */
    int64_t sh = py2_hash(sens, ns);
    if (s->group_n) {
        int c = context(s, s->group, (int32_t)s->group_n, s->group_hash, sens, ns, sh, 1);
        if (c < 0)
            return -1;
        flag = c;
        if (flag)
            skip = s->n_ctx - 1;
    }
    /* membership in the previous group */
    s->stamp++;
    if (s->stamp == 0) { /* wrapped: forget every old stamp */
        memset(s->nstamp, 0, (size_t)s->n_ctx * sizeof(uint32_t));
        if (s->rc_hstamp_cap)
            memset(s->rc_hstamp, 0, (size_t)s->rc_hstamp_cap * sizeof(uint32_t));
        if (s->ov_stamp_cap)
            memset(s->ov_stamp, 0, (size_t)s->ov_stamp_cap * sizeof(uint32_t));
        s->stamp = 1;
    }
    uint64_t gsmask = 0, gsig = 0;
    for (Py_ssize_t i = 0; i < s->group_n; i++) {
        int64_t f = s->group[i];
        if (f < SMALL) {
            gsmask |= (uint64_t)1 << f;
        } else {
            gsig |= fact_sig(f);
            if (f >= NEURON_BASE && f - NEURON_BASE < s->n_ctx)
                s->nstamp[f - NEURON_BASE] = s->stamp;
        }
    }
    uint64_t sensmask = 0;
    for (int32_t i = 0; i < ns && sens[i] < SMALL; i++)
        sensmask |= (uint64_t)1 << sens[i];

    /* Each right side's overlap with the present, and whether the present holds it all. */
    Py_ssize_t nr = s->n_right;
    if (GROW(s->rfull, s->rfull_cap, nr) < 0 || GROW(s->rc_off, s->rc_off_cap, nr) < 0
        || GROW(s->rc_n, s->rc_n_cap, nr) < 0 || GROW(s->rc_hash, s->rc_hash_cap, nr) < 0)
        return -1;
    if (nr > s->rc_hstamp_cap) {
        Py_ssize_t old = s->rc_hstamp_cap;
        if (GROW(s->rc_hstamp, s->rc_hstamp_cap, nr) < 0)
            return -1;
        memset(s->rc_hstamp + old, 0, (size_t)(s->rc_hstamp_cap - old) * sizeof(uint32_t));
    }
    s->rcf_n = 0;
    for (Py_ssize_t r = 0; r < nr; r++) {
        Right *R = &s->right[r];
        const int64_t *rf = s->rarena + R->foff;
        if (GROW(s->rcf, s->rcf_cap, s->rcf_n + R->nf) < 0)
            return -1;
        int64_t *out = s->rcf + s->rcf_n;
        int32_t k = 0;
        if (!R->big && ns > 0 && sens[ns - 1] < SMALL) {
            uint64_t inter = R->smask & sensmask;
            s->rfull[r] = inter == R->smask;
            for (int32_t i = 0; i < R->nf; i++)
                if ((inter >> rf[i]) & 1u)
                    out[k++] = rf[i];
        } else { /* merge of two sorted lists */
            int32_t i = 0, j = 0;
            while (i < R->nf && j < ns) {
                if (rf[i] == sens[j]) {
                    out[k++] = rf[i];
                    i++;
                    j++;
                } else if (rf[i] < sens[j]) {
                    i++;
                } else {
                    j++;
                }
            }
            s->rfull[r] = k == R->nf;
        }
        s->rc_off[r] = s->rcf_n;
        s->rc_n[r] = k;
        s->rcf_n += k;
    }

    /* Contexts whose left side the previous group holds whole (a left side that existed when
     * the group was formed) are selected; those whose right side the present holds whole too
     * are active. Each left side is filed under its largest fact, so the group's own facts
     * lead to every candidate. */
    Py_ssize_t n_crossed = s->n_left_crossed;
    Py_ssize_t n_active = 0, n_selected = 0;
    const LTop *ltop = s->ltop;
    Py_ssize_t n_cand = 0;
    for (Py_ssize_t gi = 0; gi <= s->group_n; gi++) {
        const IVec *under;
        if (gi == s->group_n) {
            under = &s->hugev; /* topped by a far out-of-range sensor fact: rare */
        } else {
            int64_t f = s->group[gi];
            if (f < SMALL)
                under = &s->smallv[f];
            else if (f >= NEURON_BASE && f - NEURON_BASE < s->n_ctx)
                under = &s->topv[f - NEURON_BASE];
            else
                continue; /* a far out-of-range fact: its sides are in hugev */
        }
        if (GROW(s->cand, s->cand_cap, n_cand + under->n) < 0)
            return -1;
        for (int32_t e = 0; e < under->n; e++) {
            int32_t lid = under->v[e];
            if (lid >= n_crossed)
                break; /* ids are in creation order */
            if ((ltop[lid].smask & ~gsmask) | (ltop[lid].sig & ~gsig))
                continue;
            PREFETCH(&s->left[lid]);
            PREFETCH((const char *)&s->left[lid] + 63);
            s->cand[n_cand++] = lid;
        }
    }
    for (Py_ssize_t c = 0; c < n_cand; c++) {
        const Left *L = &s->left[s->cand[c]];
        PREFETCH(s->arena + L->foff);
        PREFETCH(L->dense ? L->dense : L->dinl);
    }
    for (Py_ssize_t c = 0; c < n_cand; c++) {
        int32_t lid = s->cand[c];
        Left *L = &s->left[lid];
        const int64_t *lf = s->arena + L->foff;
        int whole = 1;
        for (int32_t i = L->nsmall; i < L->nf; i++)
            if (!in_group(s, lf[i], gsmask)) {
                whole = 0;
                break;
            }
        if (!whole)
            continue;
        n_selected += L->used;
        if (GROW(s->act, s->act_cap, n_active + L->used) < 0)
            return -1;
        const int32_t *dense = L->dense ? L->dense : L->dinl;
        for (int32_t i = 0; i < L->used; i++) {
            int32_t cid = dense[2 * i];
            if (s->rfull[dense[2 * i + 1]]) {
                if (cid == skip)
                    continue;
                s->ctx[cid].cnt++;
                s->act[n_active++] = cid;
            }
        }
        if (skip < s->n_ctx && s->ctx[skip].left == lid)
            n_selected--;
    }

    /* Candidate new contexts: overlaps of zero-level contexts with the present, without
     * repeats, in the order the original first lists them (left sides by id, their contexts
     * in Python 2 dict order). */
    s->n_pot = 0;
    s->pf_n = 0;
    int fast = 0;
    uint64_t all_neurons = 0;
    if (flag) {
        s->pt_g++;
        if (s->pt_g == 0) {
            if (s->pt_cap)
                memset(s->pt_gen, 0, (size_t)s->pt_cap * sizeof(uint32_t));
            s->pt_g = 1;
        }
        if (pot_table_reserve(s, 64) < 0)
            return -1;
        /* neuron overlaps of the zero-level left sides with the group, through the index */
        if (GROW(s->ov_bits, s->ov_cap, s->n_left) < 0)
            return -1;
        if (s->ov_cap > s->ov_stamp_cap) {
            uint32_t *p = PyMem_Realloc(s->ov_stamp, (size_t)s->ov_cap * sizeof(uint32_t));
            if (p == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            s->ov_stamp = p;
            memset(s->ov_stamp + s->ov_stamp_cap, 0,
                   (size_t)(s->ov_cap - s->ov_stamp_cap) * sizeof(uint32_t));
            s->ov_stamp_cap = s->ov_cap;
        }
        /* the group's neurons are its last facts (at most 64: max_active_neurons) */
        Py_ssize_t nb = 0;
        while (nb < s->group_n && s->group[s->group_n - 1 - nb] >= NEURON_BASE)
            nb++;
        Py_ssize_t gbase = s->group_n - nb;
        int group_huge = gbase > 0 && s->group[gbase - 1] >= SMALL;
        for (Py_ssize_t gi = gbase; gi < s->group_n; gi++) {
            int64_t cid = s->group[gi] - NEURON_BASE;
            if (cid >= s->n_ctx)
                continue;
            uint64_t bit = (uint64_t)1 << (gi - gbase);
            const IVec *z = &s->zn[cid];
            for (int32_t e = 0; e < z->n; e++) {
                int32_t lid = z->v[e];
                if (s->ov_stamp[lid] != s->stamp) {
                    s->ov_stamp[lid] = s->stamp;
                    s->ov_bits[lid] = bit;
                } else {
                    s->ov_bits[lid] |= bit;
                }
            }
        }
        if (!group_huge && ns > 0 && sens[ns - 1] < SMALL) {
            /* Every fact small or a neuron: candidates named by keys, facts made for the new. */
            fast = 1;
            if (key_table_reserve(s, 64) < 0)
                return -1;
            /* the zero-level left sides that overlap the group by 1..max_left_len facts */
            Py_ssize_t n_pass = 0;
            if (GROW(s->cand, s->cand_cap, 2 * s->n_zl) < 0)
                return -1;
            for (Py_ssize_t zi = 0; zi < s->n_zl; zi++) {
                int32_t lid = s->zl[zi];
                if (lid >= n_crossed)
                    break;
                if (zi + 8 < s->n_zl) {
                    PREFETCH(&s->ov_stamp[s->zl[zi + 8]]);
                    PREFETCH(&s->ov_bits[s->zl[zi + 8]]);
                }
                uint64_t lb = s->ov_stamp[lid] == s->stamp ? s->ov_bits[lid] : 0;
                int32_t ov = popcount64(s->zl_smask[zi] & gsmask) + popcount64(lb);
                if (ov == 0 || ov > s->max_left_len)
                    continue;
                PREFETCH(&s->left[lid]);
                PREFETCH((const char *)&s->left[lid] + 63);
                s->cand[2 * n_pass] = (int32_t)zi; /* (position in zl, overlap) */
                s->cand[2 * n_pass + 1] = ov;
                n_pass++;
            }
            for (Py_ssize_t c = 0; c < n_pass; c++) {
                Left *L = &s->left[s->zl[s->cand[2 * c]]];
                const int32_t *zord = zord_of(s, L);
                if (zord == NULL)
                    return -1;
                for (int32_t i = 0; i < L->nzero; i++)
                    PREFETCH(&s->ctx[zord[i]]);
            }
            for (Py_ssize_t c = 0; c < n_pass; c++) {
                Py_ssize_t zi = s->cand[2 * c];
                int32_t ov = s->cand[2 * c + 1];
                int32_t lid = s->zl[zi];
                uint64_t lsm = s->zl_smask[zi] & gsmask;
                uint64_t lb = s->ov_stamp[lid] == s->stamp ? s->ov_bits[lid] : 0;
                int is_full = ov == s->zl_nf[zi];
                Left *L = &s->left[lid];
                const int32_t *zord = L->zord ? L->zord : L->zinl; /* made above */
                for (int32_t zi2 = 0; zi2 < L->nzero; zi2++) {
                    int32_t cid = zord[zi2];
                    int32_t rid = s->ctx[cid].right;
                    if (s->rc_n[rid] == 0 || (is_full && s->rfull[rid]) || cid == skip)
                        continue;
                    uint64_t rsm = s->right[rid].smask & sensmask;
                    Py_ssize_t k = s->n_pot;
                    if (GROW(s->pk, s->pk_cap, 3 * (k + 1)) < 0 || GROW(s->p_rid, s->p_rid_cap, k + 1) < 0)
                        return -1;
                    if (key_find(s, lsm, lb, rsm, k) < 0) {
                        s->pk[3 * k] = lsm;
                        s->pk[3 * k + 1] = lb;
                        s->pk[3 * k + 2] = rsm;
                        s->p_rid[k] = rid;
                        s->n_pot++;
                        if (key_table_reserve(s, s->n_pot) < 0)
                            return -1;
                    }
                }
            }
            /* the left overlaps' facts (sorted: the group's order) and hashes */
            if (GROW(s->p_loff, s->p_loff_cap, s->n_pot) < 0 || GROW(s->p_ln, s->p_ln_cap, s->n_pot) < 0
                || GROW(s->p_lh, s->p_lh_cap, s->n_pot) < 0)
                return -1;
            for (Py_ssize_t k = 0; k < s->n_pot; k++) {
                uint64_t lsm = s->pk[3 * k], lb = s->pk[3 * k + 1];
                int32_t n = popcount64(lsm) + popcount64(lb);
                if (GROW(s->pf, s->pf_cap, s->pf_n + n) < 0)
                    return -1;
                int64_t *out = s->pf + s->pf_n;
                int32_t j = 0;
                for (Py_ssize_t gi = 0; gi < gbase; gi++)
                    if ((lsm >> s->group[gi]) & 1u)
                        out[j++] = s->group[gi];
                for (uint64_t b = lb; b; b &= b - 1)
                    out[j++] = s->group[gbase + popcount64((b & (0 - b)) - 1)];
                s->p_loff[k] = s->pf_n;
                s->p_ln[k] = n;
                s->p_lh[k] = py2_hash(out, n);
                s->pf_n += n;
            }
            all_neurons = nb == 64 ? ~(uint64_t)0 : (((uint64_t)1 << nb) - 1);
        }
        for (Py_ssize_t zi = 0; !fast && zi < s->n_zl; zi++) {
            int32_t lid = s->zl[zi];
            if (lid >= n_crossed)
                break;
            int32_t ov = popcount64(s->zl_smask[zi] & gsmask);
            if (s->ov_stamp[lid] == s->stamp)
                ov += popcount64(s->ov_bits[lid]);
            Left *L;
            const int64_t *lf;
            if (s->zl_nhuge[zi]) {
                L = &s->left[lid];
                lf = s->arena + L->foff;
                for (int32_t i = L->nsmall; i < L->nsmall + L->nhuge; i++)
                    ov += in_group(s, lf[i], gsmask);
            }
            if (ov == 0 || ov > s->max_left_len)
                continue;
            L = &s->left[lid];
            lf = s->arena + L->foff;
            int is_full = ov == s->zl_nf[zi];
            Py_ssize_t loff = -1;
            int64_t lhash = 0;
            const int32_t *zord = zord_of(s, L);
            if (zord == NULL)
                return -1;
            for (int32_t zi2 = 0; zi2 < L->nzero; zi2++) {
                int32_t cid = zord[zi2];
                int32_t rid = s->ctx[cid].right;
                if (s->rc_n[rid] == 0 || (is_full && s->rfull[rid]) || cid == skip)
                    continue;
                if (loff < 0) {
                    if (GROW(s->pf, s->pf_cap, s->pf_n + ov) < 0)
                        return -1;
                    loff = s->pf_n;
                    int32_t k = 0;
                    for (int32_t j = 0; j < L->nf; j++)
                        if (in_group(s, lf[j], gsmask))
                            s->pf[loff + k++] = lf[j];
                    s->pf_n += k;
                    lhash = py2_hash(s->pf + loff, ov);
                }
                Py_ssize_t k = s->n_pot;
                if (GROW(s->p_loff, s->p_loff_cap, k + 1) < 0 || GROW(s->p_ln, s->p_ln_cap, k + 1) < 0
                    || GROW(s->p_lh, s->p_lh_cap, k + 1) < 0 || GROW(s->p_rid, s->p_rid_cap, k + 1) < 0)
                    return -1;
                s->p_loff[k] = loff;
                s->p_ln[k] = ov;
                s->p_lh[k] = lhash;
                s->p_rid[k] = rid;
                if (pot_find(s, s->pf + loff, ov, lhash, s->rcf + s->rc_off[rid], s->rc_n[rid],
                             rc_hash_of(s, rid), k) < 0) {
                    s->n_pot++;
                    if (pot_table_reserve(s, s->n_pot) < 0)
                        return -1;
                }
            }
        }
    }
    Py_ssize_t n_unique = 0;
    if (flag && fast)
        n_unique = s->n_pot + (key_find(s, gsmask, all_neurons, sensmask, -1) >= 0 ? 0 : 1);
    else if (flag) /* (group, sens) counts once, as the original's set of candidates does */
        n_unique = s->n_pot
                   + (pot_find(s, s->group, (int32_t)s->group_n, s->group_hash, sens, ns, sh, -1) < 0);

    /* The most often active contexts (ties by the hashes) become the next neuron facts. */
    int k = s->max_active;
    int32_t *top = s->best;
    Py_ssize_t n_top = 0;
    if (n_active <= k) {
        for (Py_ssize_t i = 0; i < n_active; i++)
            top[n_top++] = s->act[i];
    } else {
        /* best[0..k) kept ascending by rank: best[0] is the lowest kept */
        for (Py_ssize_t i = 0; i < n_active; i++) {
            int32_t c = s->act[i];
            if (n_top < k) {
                Py_ssize_t j = n_top++;
                while (j > 0 && ranks_above(s, top[j - 1], c)) {
                    top[j] = top[j - 1];
                    j--;
                }
                top[j] = c;
            } else if (ranks_above(s, c, top[0])) {
                Py_ssize_t j = 0;
                while (j + 1 < k && ranks_above(s, c, top[j + 1])) {
                    top[j] = top[j + 1];
                    j++;
                }
                top[j] = c;
            }
        }
    }
    qsort(top, (size_t)n_top, sizeof(int32_t), cmp_i32);
    /* the new group: the sensor facts, then the neuron facts (all above them) */
    Py_ssize_t new_n = ns + n_top;
    if (GROW(s->group, s->group_cap, new_n) < 0)
        return -1;
    memcpy(s->group, sens, (size_t)ns * sizeof(int64_t));
    for (Py_ssize_t i = 0; i < n_top; i++)
        s->group[ns + i] = NEURON_BASE + top[i];
    s->group_n = new_n;
    s->group_hash = py2_hash(s->group, new_n);

    /* Learn the candidates. */
    if (s->left_map.cap)
        for (Py_ssize_t i = 0; i < s->n_pot; i++) {
            uint64_t at = mix64((uint64_t)s->p_lh[i]) & ((uint64_t)s->left_map.cap - 1);
            PREFETCH(&s->left_map.vals[at]);
            PREFETCH(&s->left_map.keys[at]);
        }
    Py_ssize_t n_new = 0;
    for (Py_ssize_t i = 0; i < s->n_pot; i++) {
        int32_t r = s->p_rid[i];
        int c = context(s, s->pf + s->p_loff[i], s->p_ln[i], s->p_lh[i], s->rcf + s->rc_off[r],
                        s->rc_n[r], rc_hash_of(s, r), 0);
        if (c < 0)
            return -1;
        n_new += c;
    }
    s->n_left_crossed = s->n_left;

    *selected_active = n_selected > 0 ? (double)n_active / (double)n_selected : 0.0;
    *added_share = flag ? (double)(n_new + 1) / (double)n_unique : 0.0;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Quantisation: the original's sensor facts of bin int((value - min) / step), including its  */
/* quirks outside the range: bin(n).lstrip("0b").rjust(bits, "0"), each character i from the  */
/* right a fact 2*i + (char == "1"). For n < 0 the text is "-0b" + digits.                   */
/* ---------------------------------------------------------------------------------------- */

static int
sensor_facts(Core *s, double value)
{
    double q = (value - s->min_value) / s->step_size;
    if (isnan(q)) {
        PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
        return -1;
    }
    if (isinf(q)) {
        PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
        return -1;
    }
    double t = trunc(q);
    int negative = t < 0.0;
    double a = fabs(t);
    uint64_t mant; /* |n| = mant << shift */
    int shift = 0, nd;
    if (a < 18446744073709551616.0) {
        mant = (uint64_t)a;
        nd = 0;
        for (uint64_t m = mant; m; m >>= 1)
            nd++;
    } else {
        int e;
        double m = frexp(a, &e); /* a = m * 2**e, m in [0.5, 1) */
        mant = (uint64_t)ldexp(m, 53);
        shift = e - 53;
        nd = e;
    }
    int len = nd + (negative ? 3 : 0);
    if (len < s->num_bits)
        len = s->num_bits;
    if (GROW(s->sens, s->sens_cap, len) < 0)
        return -1;
    for (int i = 0; i < len; i++) {
        int bit = 0;
        if (i < nd && i >= shift) {
            int b = i - shift;
            bit = b < 64 ? (int)((mant >> b) & 1u) : 0;
        }
        s->sens[i] = 2 * (int64_t)i + bit;
    }
    s->sens_n = len;
    return 0;
}

static int
rebuild(Core *s)
{
    double a, b;
    s->n_rebuilds++;
    clear_memory(s);
    if (s->recent == NULL)
        return 0;
    long long half = s->max_contexts / 2;
    for (Py_ssize_t i = 0; i < s->recent_len; i++) {
        Py_ssize_t at = (s->recent_head + i) % s->replay;
        if (s->n_ctx > half)
            clear_memory(s);
        if (learn(s, s->recent[at], s->recent_n[at], &a, &b) < 0)
            return -1;
    }
    return 0;
}

static int
remember(Core *s)
{
    Py_ssize_t at;
    if (s->recent_len < s->replay) {
        at = (s->recent_head + s->recent_len) % s->replay;
        s->recent_len++;
    } else {
        at = s->recent_head;
        s->recent_head = (s->recent_head + 1) % s->replay;
    }
    if (s->recent_cap[at] < s->sens_n) {
        int64_t *p = PyMem_Realloc(s->recent[at], (size_t)s->sens_n * sizeof(int64_t));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->recent[at] = p;
        s->recent_cap[at] = (int32_t)s->sens_n;
    }
    memcpy(s->recent[at], s->sens, (size_t)s->sens_n * sizeof(int64_t));
    s->recent_n[at] = (int32_t)s->sens_n;
    return 0;
}

/* The score of one value (NaN: unknown, memory untouched); -2.0 with an exception set. */
static double
core_step(Core *s, double value)
{
    if (!isfinite(value))
        return NAN;
    double sa, as;
    if (sensor_facts(s, value) < 0)
        return -2.0;
    if (learn(s, s->sens, (int32_t)s->sens_n, &sa, &as) < 0)
        return -2.0;
    if (s->max_contexts) {
        if (s->recent != NULL && remember(s) < 0)
            return -2.0;
        if (s->n_ctx > s->max_contexts && rebuild(s) < 0)
            return -2.0;
    }
    double score = (1.0 - sa + as) / 2.0;
    long long k = s->rest_k;
    long long start = (0 < k && k < s->n_history) ? s->n_history - k : 0;
    double out = s->last_high < start ? score : 0.0;
    if (score >= s->base_threshold)
        s->last_high = s->n_history;
    s->n_history++;
    return out;
}

/* ---------------------------------------------------------------------------------------- */
/* The Python type                                                                          */
/* ---------------------------------------------------------------------------------------- */

static void
Core_dealloc(Core *s)
{
    clear_memory(s);
    PyMem_Free(s->arena);
    PyMem_Free(s->left);
    map_free(&s->left_map);
    map_free(&s->right_map);
    PyMem_Free(s->right);
    PyMem_Free(s->rarena);
    PyMem_Free(s->ctx);
    PyMem_Free(s->ltop);
    PyMem_Free(s->zl_smask);
    PyMem_Free(s->zl_nf);
    PyMem_Free(s->zl_nhuge);
    PyMem_Free(s->nstamp);
    PyMem_Free(s->topv);
    PyMem_Free(s->cand);
    for (int i = 0; i < SMALL; i++)
        PyMem_Free(s->smallv[i].v);
    PyMem_Free(s->hugev.v);
    PyMem_Free(s->ov_stamp);
    PyMem_Free(s->ov_bits);
    PyMem_Free(s->pk);
    PyMem_Free(s->zn);
    PyMem_Free(s->zl);
    PyMem_Free(s->group);
    PyMem_Free(s->sens);
    PyMem_Free(s->rfull);
    PyMem_Free(s->rc_off);
    PyMem_Free(s->rc_n);
    PyMem_Free(s->rc_hash);
    PyMem_Free(s->rc_hstamp);
    PyMem_Free(s->rcf);
    PyMem_Free(s->act);
    PyMem_Free(s->pf);
    PyMem_Free(s->p_loff);
    PyMem_Free(s->p_ln);
    PyMem_Free(s->p_lh);
    PyMem_Free(s->p_rid);
    PyMem_Free(s->pt_gen);
    PyMem_Free(s->pt_idx);
    if (s->recent) {
        for (Py_ssize_t i = 0; i < s->replay; i++)
            PyMem_Free(s->recent[i]);
        PyMem_Free(s->recent);
        PyMem_Free(s->recent_n);
        PyMem_Free(s->recent_cap);
    }
    Py_XDECREF(s->rest_period);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int
Core_init(Core *s, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"min_value", "max_value", "rest_period", "base_threshold",
                             "max_left_semi_contexts_length", "max_active_neurons",
                             "num_norm_value_bits", "max_contexts", "replay", NULL};
    PyObject *lo_o, *hi_o, *rest = NULL, *thr = NULL;
    int max_left = 7, max_active = 15, num_bits = 3;
    long long max_contexts = 0, replay = 0;
    if (s->rest_period != NULL) {
        PyErr_SetString(PyExc_TypeError, "ContextOSE is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OOiiiLL", kwlist, &lo_o, &hi_o, &rest, &thr,
                                     &max_left, &max_active, &num_bits, &max_contexts, &replay))
        return -1;
    double lo = PyFloat_AsDouble(lo_o);
    if (lo == -1.0 && PyErr_Occurred())
        return -1;
    double hi = PyFloat_AsDouble(hi_o);
    if (hi == -1.0 && PyErr_Occurred())
        return -1;
    if (!(isfinite(lo) && isfinite(hi)) || hi < lo) {
        PyObject *a = PyFloat_FromDouble(lo), *b = PyFloat_FromDouble(hi);
        if (a && b)
            PyErr_Format(PyExc_ValueError, "need a finite range with min <= max, got [%R, %R]", a, b);
        Py_XDECREF(a);
        Py_XDECREF(b);
        return -1;
    }
    if (rest == NULL) {
        rest = PyLong_FromLong(30);
        if (rest == NULL)
            return -1;
    } else {
        Py_INCREF(rest);
    }
    s->rest_period = rest;
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL)
        return -1;
    int negative = PyObject_RichCompareBool(rest, zero, Py_LT);
    Py_DECREF(zero);
    if (negative < 0)
        return -1;
    if (negative) {
        PyErr_Format(PyExc_ValueError, "rest_period must be >= 0, got %R", rest);
        return -1;
    }
    PyObject *k = PyNumber_Long(rest);
    if (k == NULL)
        return -1;
    int overflow = 0;
    s->rest_k = PyLong_AsLongLongAndOverflow(k, &overflow);
    Py_DECREF(k);
    if (overflow > 0)
        s->rest_k = LLONG_MAX;
    else if (s->rest_k == -1 && PyErr_Occurred())
        return -1;
    s->base_threshold = 0.75;
    if (thr != NULL) {
        s->base_threshold = PyFloat_AsDouble(thr);
        if (s->base_threshold == -1.0 && PyErr_Occurred())
            return -1;
    }
    if (num_bits < 1 || num_bits > 30) {
        PyErr_Format(PyExc_ValueError, "num_norm_value_bits must be in 1..30, got %d", num_bits);
        return -1;
    }
    if (max_active < 1 || max_active > 64) {
        PyErr_Format(PyExc_ValueError, "max_active_neurons must be in 1..64, got %d", max_active);
        return -1;
    }
    s->min_value = lo;
    s->max_value = hi;
    s->max_left_len = max_left;
    s->max_active = max_active;
    s->num_bits = num_bits;
    double max_bin = pow(2.0, num_bits) - 1.0;
    double full_range = hi - lo;
    if (full_range == 0.0)
        full_range = max_bin;
    s->step_size = full_range / max_bin;
    if (max_contexts < 0 || replay < 0) {
        PyErr_Format(PyExc_ValueError, "max_contexts and replay must be >= 0, got %lld, %lld",
                     max_contexts, replay);
        return -1;
    }
    s->max_contexts = max_contexts;
    s->replay = replay;
    if (max_contexts > 0 && replay > 0) {
        if (replay > (long long)(PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(int64_t *))) {
            PyErr_NoMemory();
            return -1;
        }
        s->recent = PyMem_Calloc((size_t)replay, sizeof(int64_t *));
        s->recent_n = PyMem_Calloc((size_t)replay, sizeof(int32_t));
        s->recent_cap = PyMem_Calloc((size_t)replay, sizeof(int32_t));
        if (s->recent == NULL || s->recent_n == NULL || s->recent_cap == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    clear_memory(s);
    s->n_history = 1; /* the original seeds its history with a 1.0 */
    s->last_high = 0;
    return 0;
}

static PyObject *
Core_step(Core *s, PyObject *arg)
{
    double v = PyFloat_AsDouble(arg);
    if (v == -1.0 && PyErr_Occurred())
        return NULL;
    if (s->rest_period == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ContextOSE was not initialised");
        return NULL;
    }
    double out = core_step(s, v);
    if (out == -2.0)
        return NULL;
    return PyFloat_FromDouble(out);
}

static PyObject *
Core_get_n_contexts(Core *s, void *closure)
{
    return PyLong_FromSsize_t(s->n_ctx);
}

static PyObject *
Core_get_float(Core *s, void *closure)
{
    return PyFloat_FromDouble(*(double *)((char *)s + (Py_ssize_t)closure));
}

static PyMethodDef Core_methods[] = {
    {"step", (PyCFunction)Core_step, METH_O,
     "Feed the next value; return the raw anomaly score (0 while resting; NaN if unknown)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Core_members[] = {
    {"rest_period", T_OBJECT, offsetof(Core, rest_period), READONLY, NULL},
    {"base_threshold", T_DOUBLE, offsetof(Core, base_threshold), READONLY, NULL},
    {"max_left_len", T_INT, offsetof(Core, max_left_len), READONLY, NULL},
    {"max_active", T_INT, offsetof(Core, max_active), READONLY, NULL},
    {"num_bits", T_INT, offsetof(Core, num_bits), READONLY, NULL},
    {"max_contexts", T_LONGLONG, offsetof(Core, max_contexts), READONLY, NULL},
    {"n_rebuilds", T_LONGLONG, offsetof(Core, n_rebuilds), READONLY,
     "How many times the bounded memory was rebuilt."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Core_getset[] = {
    {"n_contexts", (getter)Core_get_n_contexts, NULL,
     "How many contexts the detector remembers (its memory, and its cost, grow with it).", NULL},
    {"min_value", (getter)Core_get_float, NULL, NULL, (void *)offsetof(Core, min_value)},
    {"max_value", (getter)Core_get_float, NULL, NULL, (void *)offsetof(Core, max_value)},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "console.analytics.detectors._cad_ose.ContextOSE",
    .tp_basicsize = sizeof(Core),
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "CAD OSE for one series, compiled: the same scores as context_ose.PythonContextOSE.",
    .tp_methods = Core_methods,
    .tp_members = Core_members,
    .tp_getset = Core_getset,
    .tp_init = (initproc)Core_init,
    .tp_new = PyType_GenericNew,
};

static PyObject *
py_tuple_hash(PyObject *module, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "expected a tuple of ints");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int64_t *buf = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (buf == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        buf[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (buf[i] == -1 && PyErr_Occurred()) {
            PyMem_Free(buf);
            Py_DECREF(seq);
            return NULL;
        }
    }
    int64_t h = py2_hash(buf, n);
    PyMem_Free(buf);
    Py_DECREF(seq);
    return PyLong_FromLongLong(h);
}

static PyMethodDef module_methods[] = {
    {"py2_tuple_hash", py_tuple_hash, METH_O, "Python 2.7's hash of a tuple of non-negative ints."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_cad_ose",
    "CAD OSE (NAB's contextOSE), compiled: the same scores as context_ose's Python port.", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__cad_ose(void)
{
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "ContextOSE", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
