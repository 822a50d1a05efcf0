#include "textflag.h"

// func prlimitNofile(old *[2]uint64) (errno uintptr)
// prlimit64(0, RLIMIT_NOFILE, NULL, old)
TEXT ·prlimitNofile(SB),NOSPLIT,$0-16
	MOVQ	$302, AX
	MOVQ	$0, DI
	MOVQ	$7, SI
	MOVQ	$0, DX
	MOVQ	old+0(FP), R10
	SYSCALL
	MOVQ	AX, errno+8(FP)
	RET
