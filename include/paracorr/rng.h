/* rng: splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
 * number generators", OOPSLA 2014), the one mixer every random number of
 * paracorr comes from: the Dropout masks, the training permutation, the
 * seeding of corruption's xoshiro256** and pc_rng_derive's chaining.
 *
 * Inline because the Dropout mask calls it once per element of every
 * forward pass. Changing a constant here changes every seeded result, so
 * reports of old runs would no longer replay. */
#ifndef PARACORR_RNG_H
#define PARACORR_RNG_H

#include <stdint.h>

/* 2^64 / golden ratio: splitmix64's state increment (the Weyl sequence). */
#define PC_RNG_GOLDEN 0x9e3779b97f4a7c15ULL

/* splitmix64's finaliser: a bijection of 64-bit values, well mixed. */
static inline uint64_t pc_rng_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The next splitmix64 output of the stream whose state is *s (advanced). */
static inline uint64_t pc_rng_splitmix64(uint64_t *s)
{
	return pc_rng_mix64(*s += PC_RNG_GOLDEN);
}

#endif
