/*
 * The init control protocol (docs/architecture.md, "Init control protocol"), shared by
 * nanocell-init, nanocell-monitor and, through test/unit/native/protocol.test.ts, the
 * TypeScript side (src/cell/initFrames.ts), which must hold the same values.
 *
 * Frames: type:u8 | id:u32le | len:u32le | payload[len]. id names an exec; 0 is the cell.
 */
#ifndef NANOCELL_PROTOCOL_H
#define NANOCELL_PROTOCOL_H

/* The control socket: the monitor passes it through the runtime, init serves it. */
#define NC_CTL_FD    3
/* Where init keeps the seccomp listener of the filter it installed, until the monitor has taken
 * it (pidfd_getfd) and the supervisor's first frame says so. */
#define NC_NOTIFY_FD 9

#define NC_FRAME_HEADER_BYTES 9
/* Larger frames are a protocol error, in both directions. */
#define NC_MAX_FRAME_PAYLOAD  (8u << 20)
/* An exec request starts with argc:u32le envc:u32le. */
#define NC_EXEC_HEADER_BYTES  8
/* A T request (and a W frame) starts with cols:u32le rows:u32le. */
#define NC_TTY_HEADER_BYTES   8

/* Supervisor -> init. */
#define NC_FRAME_EXEC	  'E'
#define NC_FRAME_STDIN	  'I'
#define NC_FRAME_KILL	  'K'
#define NC_FRAME_QUIT	  'Q'
/* An E request on a pseudo-terminal of the cell's own devpts: T payload = cols rows + E payload. */
#define NC_FRAME_EXEC_TTY 'T'
#define NC_FRAME_RESIZE	  'W'
/* A warm cell's claim (init started with --landlock-deferred): apply Landlock now. */
#define NC_FRAME_LANDLOCK 'A'

/* Init -> supervisor. */
#define NC_FRAME_READY	    'R'
#define NC_FRAME_STARTED    'S'
#define NC_FRAME_STDOUT	    'O'
#define NC_FRAME_STDERR	    'e'
#define NC_FRAME_EXITED	    'X'
#define NC_FRAME_FAILED	    'F'
#define NC_FRAME_LOG	    'L'
#define NC_FRAME_FATAL	    'Z'
/* The answer to A: Landlock is in force for init and every command from now on. */
#define NC_FRAME_LANDLOCKED 'a'

#endif
