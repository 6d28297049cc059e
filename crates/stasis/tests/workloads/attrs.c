/*
 * Task attributes: resource limits, umask, cwd, personality, name,
 * dumpable, no_new_privs, child subreaper, groups and gids, capabilities
 * (effective, permitted, inheritable, bounding, ambient), nice value and
 * scheduling policy, rseq registration, robust futex list and
 * clear_child_tid.
 */
#include "wl.h"
#include <linux/capability.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>

extern const ptrdiff_t __rseq_offset;

struct rseq_abi {
	uint32_t cpu_id_start;
	int32_t cpu_id;
};

static int tid_word;

static void caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	syscall(SYS_capget, &h, d);
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	char dir[4096], cwd[4096], name[32];
	struct __user_cap_data_struct cd[2], cd_after[2];
	gid_t groups[3] = {1001, 1002, 1003}, g_after[8];
	gid_t rg, eg, sg;
	void *robust_before, *robust_after;
	size_t len_before, len_after;
	int *tidaddr = NULL;
	struct rseq_abi *rs;

	wl_init(argc, argv);

	rl.rlim_cur = 512;
	rl.rlim_max = 4096;
	setrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 3 << 20;
	rl.rlim_max = 64 << 20;
	setrlimit(RLIMIT_STACK, &rl);
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);

	umask(027);
	wl_path(dir, sizeof(dir), "sub dir");
	mkdir(dir, 0700);
	/* a root of its own: the workload directory */
	{
		char root[4096];
		snprintf(root, sizeof(root), "%s", wl_dir);
		if (chroot(root) || chdir("/sub dir"))
			wl_die("chroot");
		wl_dir = "/";
		strcpy(dir, "/sub dir");
	}
	personality(ADDR_NO_RANDOMIZE);
	prctl(PR_SET_NAME, "wl-attrs-name");
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setpriority(PRIO_PROCESS, 0, 7);
	{
		struct sched_param p = {0};
		sched_setscheduler(0, SCHED_BATCH, &p);
	}
	if (setgroups(3, groups) || setresgid(1001, 1002, 1003))
		wl_die("setresgid");

	caps(cd);
	cd[0].effective &= ~(1u << CAP_NET_RAW);
	cd[0].permitted &= ~(1u << CAP_NET_RAW);
	cd[0].inheritable |= 1u << CAP_NET_BIND_SERVICE;
	{
		struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
		if (syscall(SYS_capset, &h, cd))
			wl_die("capset");
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
	prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0);
	caps(cd);

	syscall(SYS_set_tid_address, &tid_word);
	syscall(SYS_get_robust_list, 0, &robust_before, &len_before);

	wl_ready();
	wl_wait();

	getrlimit(RLIMIT_NOFILE, &rl);
	CHECK(rl.rlim_cur == 512 && rl.rlim_max == 4096, "RLIMIT_NOFILE %lu/%lu", (unsigned long)rl.rlim_cur,
	      (unsigned long)rl.rlim_max);
	getrlimit(RLIMIT_STACK, &rl);
	CHECK(rl.rlim_cur == 3 << 20 && rl.rlim_max == 64 << 20, "RLIMIT_STACK %lu/%lu", (unsigned long)rl.rlim_cur,
	      (unsigned long)rl.rlim_max);
	getrlimit(RLIMIT_CORE, &rl);
	CHECK(rl.rlim_cur == 0 && rl.rlim_max == 0, "RLIMIT_CORE changed");
	mode_t m = umask(0);
	CHECK(m == 027, "umask %o", m);
	CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, dir), "cwd is %s, expected %s", cwd, dir);
	CHECK(personality(0xffffffff) == ADDR_NO_RANDOMIZE, "personality %#x", personality(0xffffffff));
	prctl(PR_GET_NAME, name);
	CHECK(!strcmp(name, "wl-attrs-name"), "name is %s", name);
	CHECK(prctl(PR_GET_DUMPABLE) == 0, "dumpable is %d", prctl(PR_GET_DUMPABLE));
	CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs lost");
	{
		int sub = 0;
		prctl(PR_GET_CHILD_SUBREAPER, &sub);
		CHECK(sub == 1, "child subreaper lost");
	}
	errno = 0;
	CHECK(getpriority(PRIO_PROCESS, 0) == 7, "nice is %d", getpriority(PRIO_PROCESS, 0));
	CHECK(sched_getscheduler(0) == SCHED_BATCH, "policy is %d", sched_getscheduler(0));
	CHECK(getgroups(8, g_after) == 3 && g_after[0] == 1001 && g_after[2] == 1003, "supplementary groups changed");
	getresgid(&rg, &eg, &sg);
	CHECK(rg == 1001 && eg == 1002 && sg == 1003, "gids %d %d %d", rg, eg, sg);
	caps(cd_after);
	CHECK(!memcmp(cd, cd_after, sizeof(cd)), "capability sets changed");
	CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) == 1, "ambient capability lost");
	CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_BOOT, 0, 0, 0) == 0, "dropped bounding capability is back");
	CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) == 1, "bounding capability lost");
	syscall(SYS_get_robust_list, 0, &robust_after, &len_after);
	CHECK(robust_after == robust_before && len_after == len_before, "robust list %p/%zu, expected %p/%zu", robust_after,
	      len_after, robust_before, len_before);
	prctl(PR_GET_TID_ADDRESS, &tidaddr);
	CHECK(tidaddr == &tid_word, "clear_child_tid is %p, expected %p", (void *)tidaddr, (void *)&tid_word);
	rs = (struct rseq_abi *)((char *)__builtin_thread_pointer() + __rseq_offset);
	rs->cpu_id = -1;
	sched_yield();
	usleep(1000);
	CHECK(rs->cpu_id >= 0, "rseq area is not updated by the kernel (not registered)");
	wl_done();
}
