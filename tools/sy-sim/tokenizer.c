/* sy-sim: the tokenizer, the generated answer text and embedding vectors. */
#include <math.h>
#include <string.h>

#include "sim.h"

#define GOLDEN 0x9e3779b97f4a7c15ULL

/*
 * Words of the generated text, each one token: a leading space and at most
 * four bytes, so the tokenizer counts an answer as exactly its tokens.  One
 * is not ASCII, so answers hold UTF-8 characters a stream may be cut in.
 */
static const char *const words[] = {
	" the", " of", " and", " to", " in", " is", " that", " for",
	" it", " as", " was", " with", " be", " by", " on", " not",
	" he", " this", " are", " or", " his", " from", " at", " but",
	" have", " an", " they", " one", " you", " were", " her", " all",
	" she", " will", " can", " more", " when", " then", " time", " so",
	" some", " what", " up", " out", " if", " into", " has", " its",
	" only", " new", " day", " way", " use", " man", " find", " long",
	" down", " look", " word", " each", " ça", " rain", " tree", " road"
};
#define NWORDS (sizeof words / sizeof words[0])

/* Whether c separates words. */
static int
is_space(unsigned char c)
{
	return (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v');
}

/*
 * Starts reading a prompt: seed makes the hashes differ per model and per
 * --seed; every block of block tokens appends its chained hash to out.
 */
void
sim_tok_begin(struct sim_tok *t, uint64_t seed, unsigned block,
    struct sim_blocks *out)
{
	memset(t, 0, sizeof *t);
	t->block = block;
	t->chain = seed;
	t->all = seed;
	t->out = out;
}

/* Adds one token, given by its hash, to the prompt read by t. */
void
sim_tok_add(struct sim_tok *t, uint64_t token)
{
	struct sim_blocks	*b = t->out;

	t->ntokens++;
	t->all = sim_mix64(t->all ^ token);
	if (t->block == 0 || b == NULL)
		return;
	t->acc = sim_mix64(t->acc ^ token);
	if (++t->in_block < t->block)
		return;
	t->chain = sim_mix64(t->chain + t->acc * GOLDEN);
	t->acc = 0;
	t->in_block = 0;
	if (b->n == b->cap) {
		b->cap = b->cap == 0 ? 16 : b->cap * 2;
		b->v = sim_xrealloc(b->v, b->cap, sizeof *b->v);
	}
	b->v[b->n++] = t->chain;
}

/*
 * Tokenizes len bytes of s into t: text splits into words at whitespace and
 * each word into pieces of at most four bytes; every piece is one token.
 */
void
sim_tok_text(struct sim_tok *t, const char *s, size_t len)
{
	size_t	i = 0, start, n;

	while (i < len) {
		while (i < len && is_space((unsigned char)s[i]))
			i++;
		start = i;
		while (i < len && !is_space((unsigned char)s[i]))
			i++;
		for (; start < i; start += n) {
			n = i - start > 4 ? 4 : i - start;
			sim_tok_add(t, sim_hash_bytes(s + start, n, 0));
		}
	}
}

/* Adds a token given by its id (prompts sent as arrays of integers). */
void
sim_tok_id(struct sim_tok *t, long long id)
{
	sim_tok_add(t, sim_mix64((uint64_t)id ^ 0x5bd1e9955bd1e995ULL));
}

/* Adds the token of a message's role (name, len bytes). */
void
sim_tok_role(struct sim_tok *t, const char *name, size_t len)
{
	sim_tok_add(t, sim_hash_bytes(name, len, 1));
}

/* Adds one token for a part that is not text (an image), by its type. */
void
sim_tok_part(struct sim_tok *t, const char *type, size_t len)
{
	sim_tok_add(t, sim_hash_bytes(type, len, 2));
}

/*
 * Finds the token after *pos in s (len bytes), as sim_tok_text splits it:
 * sets *start and *n to its bytes and moves *pos past it.  Returns 0 when
 * no token is left.
 */
int
sim_tok_piece(const char *s, size_t len, size_t *pos, size_t *start,
    size_t *n)
{
	size_t	i = *pos, end;

	while (i < len && is_space((unsigned char)s[i]))
		i++;
	if (i == len)
		return (0);
	for (end = i; end < len && end - i < 4 &&
	    !is_space((unsigned char)s[end]); end++)
		;
	*start = i;
	*n = end - i;
	*pos = end;
	return (1);
}

/* A made-up vocabulary id (3 and up) for a token's text. */
unsigned
sim_token_id(const char *s, size_t len)
{
	return (3 + (unsigned)(sim_hash_bytes(s, len, 3) % 31997));
}

/* Ends the prompt read by t; returns the hash that seeds its answer. */
uint64_t
sim_tok_end(struct sim_tok *t)
{
	return (sim_mix64(t->all ^ t->ntokens));
}

/*
 * Text of token i (from 0) of the answer seeded by hash, with its leading
 * space; sets *len.  Returns a static string.
 */
const char *
sim_word(uint64_t hash, unsigned i, size_t *len)
{
	const char	*w = words[sim_mix64(hash + (i + 1) * GOLDEN) % NWORDS];

	*len = strlen(w);
	return (w);
}

/* An output length drawn from d with the random bits of hash. */
unsigned
sim_dist_draw(const struct sim_dist *d, uint64_t hash)
{
	if (d->kind == SIM_DIST_FIXED || d->hi <= d->lo)
		return (d->lo);
	return (d->lo + sim_mix64(hash ^ 0xa0761d6478bd642fULL) %
	    (d->hi - d->lo + 1));
}

/* Fills out with a unit vector of dims numbers seeded by hash. */
void
sim_embedding(uint64_t hash, unsigned dims, float *out)
{
	double		 norm = 0, x;
	unsigned	 j;

	for (j = 0; j < dims; j++) {
		x = (sim_mix64(hash + (j + 1) * GOLDEN) >> 11) * 0x1.0p-53;
		out[j] = (float)(2 * x - 1);
		norm += (double)out[j] * out[j];
	}
	norm = sqrt(norm);
	if (norm == 0)
		return;
	for (j = 0; j < dims; j++)
		out[j] = (float)(out[j] / norm);
}
