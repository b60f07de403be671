#define _GNU_SOURCE
/* Built only while src/core/policy.c is absent: a policy that allows all. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"

int cvfs_policy_new(struct cvfs_policy **out)
{
	*out = NULL;
	return -ENOTSUP;
}
void cvfs_policy_free(struct cvfs_policy *p)
{
	(void)p;
}
int cvfs_policy_profile(struct cvfs_policy *p, const char *name, char **errmsg)
{
	(void)p, (void)name, (void)errmsg;
	return -ENOTSUP;
}
int cvfs_policy_set(struct cvfs_policy *p, const char *key, const char *value, char **errmsg)
{
	(void)p, (void)key, (void)value, (void)errmsg;
	return -ENOTSUP;
}
int cvfs_policy_load(struct cvfs_policy *p, const char *file, char **errmsg)
{
	(void)p, (void)file, (void)errmsg;
	return -ENOTSUP;
}
int cvfs_policy_active(const struct cvfs_policy *p)
{
	(void)p;
	return 0;
}
int cvfs_policy_readonly(const struct cvfs_policy *p)
{
	(void)p;
	return 0;
}
int cvfs_policy_check(struct cvfs_policy *p, enum cvfs_pol_op op, const char *path, uint32_t type,
		      const struct cvfs_cred *cr)
{
	(void)p, (void)op, (void)path, (void)type, (void)cr;
	return 0;
}
int cvfs_policy_check_size(struct cvfs_policy *p, const char *path, uint64_t new_size,
			   const struct cvfs_cred *cr)
{
	(void)p, (void)path, (void)new_size, (void)cr;
	return 0;
}
int cvfs_policy_charge(struct cvfs_policy *p, int64_t dbytes, int64_t dfiles, const char *path,
		       const struct cvfs_cred *cr)
{
	(void)p, (void)dbytes, (void)dfiles, (void)path, (void)cr;
	return 0;
}
void cvfs_policy_init_usage(struct cvfs_policy *p, uint64_t bytes, uint64_t files)
{
	(void)p, (void)bytes, (void)files;
}
int cvfs_policy_has_quota(const struct cvfs_policy *p)
{
	(void)p;
	return 0;
}
void cvfs_policy_statfs(const struct cvfs_policy *p, struct cvfs_statfs *sf)
{
	(void)p, (void)sf;
}
char *cvfs_policy_violations(struct cvfs_policy *p)
{
	(void)p;
	return strdup("");
}
char *cvfs_policy_describe(const struct cvfs_policy *p)
{
	(void)p;
	return strdup("null");
}
