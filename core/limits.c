/* limits: one copy of the caps in force, the defaults until a program sets
 * its own. A global rather than a parameter because every loader, down to
 * the plan the graph builds to prove its shapes, needs the same caps. */
#include "paracorr/limits.h"

static struct pc_limits current = {
	PC_LIMITS_DEFAULT_NODES,
	PC_LIMITS_DEFAULT_VALUES,
	(uint64_t)PC_LIMITS_DEFAULT_PLAN_MB << 20,
	(uint64_t)PC_LIMITS_DEFAULT_DECODED_MB << 20,
};

void pc_limits_set(const struct pc_limits *l)
{
	current = *l;
}

const struct pc_limits *pc_limits_get(void)
{
	return &current;
}
