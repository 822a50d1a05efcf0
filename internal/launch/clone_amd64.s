//go:build linux

#include "textflag.h"

// func cloneCall(flags, stack, fn uintptr, s *start) (pid, errno uintptr)
//
// clone(2) with a stack of its own for the child, which calls fn(s) there
// and exits if fn returns. fn is the entry of a Go function of the
// register ABI (a func value's code pointer), called directly: an ABI0
// wrapper would be instrumented by the race detector, whose state the
// child must not touch. R14 (g) is left as the caller's, X15 zeroed; the
// functions called are nosplit and never use g.
TEXT ·cloneCall(SB),NOSPLIT,$0-48
	MOVQ	flags+0(FP), DI
	MOVQ	stack+8(FP), SI
	MOVQ	fn+16(FP), R12
	MOVQ	s+24(FP), R13
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVL	$56, AX // SYS_clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	$0, pid+32(FP)
	MOVQ	AX, errno+40(FP)
	RET
ok:
	MOVQ	AX, pid+32(FP)
	MOVQ	$0, errno+40(FP)
	RET
child:
	SUBQ	$16, SP // the spill slot of fn's argument, and alignment
	MOVQ	R13, AX
	XORPS	X15, X15
	CALL	R12
	MOVL	$231, AX // SYS_exit_group
	MOVL	$127, DI
	SYSCALL
	INT	$3
