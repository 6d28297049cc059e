/*
 * Registers: the task spins with values held only in registers (r12-r15,
 * ymm0-15, and with AVX-512 zmm16-31 and k1-k7), with an unusual x87
 * control word and MXCSR, and a thread-local variable (fs base). It is
 * checkpointed while spinning; after restore the registers must still
 * hold the values.
 */
#include "wl.h"
#include <cpuid.h>

static __thread uint64_t tls_value = 0x1122334455667788ULL;

static uint8_t ymm_in[16][32] __attribute__((aligned(32)));
static uint8_t ymm_out[16][32] __attribute__((aligned(32)));
static uint8_t zmm_in[16][64] __attribute__((aligned(64)));
static uint8_t zmm_out[16][64] __attribute__((aligned(64)));
static uint64_t k_in[7], k_out[7];
static uint64_t gp_in[4] = {0x1212121212121212ULL, 0x1313131313131313ULL, 0xfedcba9876543210ULL, 0x0f0f0f0f0f0f0f0fULL};
static uint64_t gp_out[4];

#define LOAD_YMM(n) "vmovdqu " #n "*32(%[yi]), %%ymm" #n "\n"
#define SAVE_YMM(n) "vmovdqu %%ymm" #n ", " #n "*32(%[yo])\n"

static void spin_avx(void)
{
	asm volatile(
		LOAD_YMM(0) LOAD_YMM(1) LOAD_YMM(2) LOAD_YMM(3) LOAD_YMM(4) LOAD_YMM(5) LOAD_YMM(6) LOAD_YMM(7)
		LOAD_YMM(8) LOAD_YMM(9) LOAD_YMM(10) LOAD_YMM(11) LOAD_YMM(12) LOAD_YMM(13) LOAD_YMM(14) LOAD_YMM(15)
		"mov 0(%[gi]), %%r12\n"
		"mov 8(%[gi]), %%r13\n"
		"mov 16(%[gi]), %%r14\n"
		"mov 24(%[gi]), %%r15\n"
		"1: pause\n"
		"cmpl $0, %[flag]\n"
		"je 1b\n"
		SAVE_YMM(0) SAVE_YMM(1) SAVE_YMM(2) SAVE_YMM(3) SAVE_YMM(4) SAVE_YMM(5) SAVE_YMM(6) SAVE_YMM(7)
		SAVE_YMM(8) SAVE_YMM(9) SAVE_YMM(10) SAVE_YMM(11) SAVE_YMM(12) SAVE_YMM(13) SAVE_YMM(14) SAVE_YMM(15)
		"mov %%r12, 0(%[go])\n"
		"mov %%r13, 8(%[go])\n"
		"mov %%r14, 16(%[go])\n"
		"mov %%r15, 24(%[go])\n"
		:
		: [yi] "r"(ymm_in), [yo] "r"(ymm_out), [gi] "r"(gp_in), [go] "r"(gp_out), [flag] "m"(wl_go)
		: "memory", "cc", "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
		  "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

#define LOAD_ZMM(n, i) "vmovdqu64 " #i "*64(%[zi]), %%zmm" #n "\n"
#define SAVE_ZMM(n, i) "vmovdqu64 %%zmm" #n ", " #i "*64(%[zo])\n"

__attribute__((target("avx512f,avx512bw"))) static void spin_avx512(void)
{
	asm volatile(
		LOAD_ZMM(16, 0) LOAD_ZMM(17, 1) LOAD_ZMM(18, 2) LOAD_ZMM(19, 3) LOAD_ZMM(20, 4) LOAD_ZMM(21, 5)
		LOAD_ZMM(22, 6) LOAD_ZMM(23, 7) LOAD_ZMM(24, 8) LOAD_ZMM(25, 9) LOAD_ZMM(26, 10) LOAD_ZMM(27, 11)
		LOAD_ZMM(28, 12) LOAD_ZMM(29, 13) LOAD_ZMM(30, 14) LOAD_ZMM(31, 15)
		"kmovq 0(%[ki]), %%k1\n"
		"kmovq 8(%[ki]), %%k2\n"
		"kmovq 16(%[ki]), %%k3\n"
		"kmovq 24(%[ki]), %%k4\n"
		"kmovq 32(%[ki]), %%k5\n"
		"kmovq 40(%[ki]), %%k6\n"
		"kmovq 48(%[ki]), %%k7\n"
		"1: pause\n"
		"cmpl $0, %[flag]\n"
		"je 1b\n"
		SAVE_ZMM(16, 0) SAVE_ZMM(17, 1) SAVE_ZMM(18, 2) SAVE_ZMM(19, 3) SAVE_ZMM(20, 4) SAVE_ZMM(21, 5)
		SAVE_ZMM(22, 6) SAVE_ZMM(23, 7) SAVE_ZMM(24, 8) SAVE_ZMM(25, 9) SAVE_ZMM(26, 10) SAVE_ZMM(27, 11)
		SAVE_ZMM(28, 12) SAVE_ZMM(29, 13) SAVE_ZMM(30, 14) SAVE_ZMM(31, 15)
		"kmovq %%k1, 0(%[ko])\n"
		"kmovq %%k2, 8(%[ko])\n"
		"kmovq %%k3, 16(%[ko])\n"
		"kmovq %%k4, 24(%[ko])\n"
		"kmovq %%k5, 32(%[ko])\n"
		"kmovq %%k6, 40(%[ko])\n"
		"kmovq %%k7, 48(%[ko])\n"
		:
		: [zi] "r"(zmm_in), [zo] "r"(zmm_out), [ki] "r"(k_in), [ko] "r"(k_out), [flag] "m"(wl_go)
		: "memory", "cc", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
		  "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

int main(int argc, char **argv)
{
	unsigned short cw_in = 0x0c7f, cw_out = 0; /* round toward zero */
	unsigned int mxcsr_in = 0x9fc0, mxcsr_out = 0; /* flush to zero, denormals are zero */
	int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
	int want512 = argc > 2 && !strcmp(argv[2], "avx512");

	wl_init(argc, argv);
	if (want512 && !avx512) {
		wl_write_file("ready", "no-avx512\n");
		return 3;
	}
	wl_fill(ymm_in, sizeof(ymm_in), 21);
	wl_fill(zmm_in, sizeof(zmm_in), 22);
	wl_fill(k_in, sizeof(k_in), 23);
	tls_value ^= 0xabcdef;
	asm volatile("fldcw %0" : : "m"(cw_in));
	asm volatile("ldmxcsr %0" : : "m"(mxcsr_in));

	wl_ready();
	if (want512)
		spin_avx512();
	else
		spin_avx();

	asm volatile("fnstcw %0" : "=m"(cw_out));
	asm volatile("stmxcsr %0" : "=m"(mxcsr_out));
	CHECK(cw_out == cw_in, "x87 control word %#x, expected %#x", cw_out, cw_in);
	CHECK(mxcsr_out == mxcsr_in, "MXCSR %#x, expected %#x", mxcsr_out, mxcsr_in);
	CHECK(tls_value == (0x1122334455667788ULL ^ 0xabcdef), "thread-local variable changed");
	if (want512) {
		for (int i = 0; i < 16; i++)
			CHECK(!memcmp(zmm_in[i], zmm_out[i], 64), "zmm%d differs", 16 + i);
		CHECK(!memcmp(k_in, k_out, sizeof(k_in)), "opmask registers differ");
	} else {
		for (int i = 0; i < 16; i++)
			CHECK(!memcmp(ymm_in[i], ymm_out[i], 32), "ymm%d differs", i);
		for (int i = 0; i < 4; i++)
			CHECK(gp_in[i] == gp_out[i], "r%d is %#llx, expected %#llx", 12 + i, (unsigned long long)gp_out[i],
			      (unsigned long long)gp_in[i]);
	}
	wl_done();
}
