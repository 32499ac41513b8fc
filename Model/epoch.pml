/*
 * Disk Paxos with live-only read sets and the membership epoch (docs/AGREEMENT.md), checked
 * exhaustively by spin (Model/check.sh). There is no clock anywhere in this model: the hosts,
 * the writes in flight and the disk take steps in every interleaving, so a host can be paused
 * for any number of steps (between any two of its steps: in the middle of a batch read, with
 * a write in flight) and continue with its stale state and old membership, without rejoining.
 *
 * WHAT IS MODELLED
 *
 * The disk. One resource. Each host h has one dblock sector (mbal, bal, inp, lver; in
 * CFG_CONVERT also the RELEASED flag and the SHARED mode block, which share the sector, so
 * every dblock write rewrites the mode block too), one leader sector (lver, owner value; in
 * CFG_CONVERT also "held" = timestamp != 0), the epoch sector (a token, 0 = the initial
 * all-zero epoch) and one delta-lease slot per host (unused, present, left). Sector writes are
 * atomic. A value is 1 + host + N*generation: two incarnations never propose the same value.
 *
 * Writes. A write the writer waits for is one step (issuing it is not observable: the writer
 * does nothing until it completes, and other steps interleave before it). Where LATE_D /
 * LATE_L / RETRIES allow it, a write may instead time out: the writer goes on and the write
 * stays in flight, to land at any later step of the Disk process (after the writer moved on,
 * crashed or was paused) or never. A host's writes to one sector land in issue order: a new
 * write to a sector waits until its earlier one landed or was lost (as DirectIO refuses a
 * write to a sector with one still in flight). A host knows what it wrote: its own dblock is
 * taken from its memory, never read back (the disk may lag behind it).
 *
 * Reads. Every batch (initial read, phase 1, phase 2, membership build) is issued after the
 * host's previous write completed; each sector of a batch (each dblock of the read set, the
 * epoch sector, the leader, each slot) is read in its own step, in any order, so the sectors
 * of one batch are read at different instants with other hosts' steps and landings between.
 * A read that already settles the batch (a higher mbal or lver: abort; a changed epoch) ends
 * it: the sectors not yet read cannot change that outcome. Where the epoch can never change
 * (CFG_REPAIR, CFG_CONVERT: no join, leave or crash) ballots do not read it (it could only
 * return the label).
 *
 * A ballot (one Disk Paxos attempt for one lease version):
 *   initial read: leader, epoch, the read set's dblocks. A changed epoch => rebuild. Rule 6:
 *     a left block read here and shown dominated (all zero, or a present block read in the
 *     same batch has a higher lver, or an equal lver while the left block's bal is 0) leaves
 *     the read set (from this ballot's phase reads on). Rule 7: the ballot is for lver
 *     max(leader.lver + 1, D), D the highest lver read (our own block included). The ballot
 *     number is the smallest b = h+1 (mod N) above every mbal read and our own.
 *   phase 1: write mbal = b, lver (our accepted bal/inp kept if our block is at this lver,
 *     else 0); read the read set and the epoch; abort if another block has a higher lver, or
 *     this lver and a higher mbal; choose the value of the highest bal among the blocks at
 *     this lver (ours included), else our own value.
 *   phase 2: write bal = b, inp = v; read again; the same aborts. If none: v is decided (the
 *     agreement assertion), then the commit writes the leader (lver, v); a commit that times
 *     out may land late, moving the leader back past later commits.
 *   A changed epoch in any read of the ballot (rule 3): nothing more is written; the epoch
 *   just read labels a new membership: every slot is read, each in its own step, all issued
 *   after that epoch read (rule 1); then a new ballot (higher mbal, accepted value kept). An
 *   abort, or a write that timed out, also starts a new ballot. Host h starts at most NBALh
 *   ballots (rebuilds included): this bounds the search.
 *
 * Membership (rules 1, 2, 4, 5). A host's membership is (label E, present slots, left slots)
 * plus the left blocks shown dominated. Read set: ourselves, every present slot (DEAD, i.e.
 * crashed, hosts included), every left slot not shown dominated. Join: delta write (slot
 * present); once it completed, the epoch write with a fresh token (if it times out: wait
 * until it landed or was lost, then retry with a fresh token); once that completed, read
 * every slot: the membership, labelled with our own token. No join wait: ballots start at
 * once. Leave: only between acquires and with no write of ours in flight: the slot is
 * written left, then the epoch with a fresh token; the host then stops. Crash: the host stops
 * at any step (its writes in flight may still land, or not); a new incarnation (generation
 * + 1) may rejoin once none of the old one's writes is in flight, reusing its slot and its
 * dblock (read from the disk).
 *
 * SH, EX and convert (CFG_CONVERT; rule 8). A lease is free for a new ballot when the leader
 * is not held, or its owner's dblock (read in the same initial read) is RELEASED at the
 * leader's lver. EX: ballot; on deciding our own value, commit (held); if the phase-2 read
 * saw another host's SHARED mode block, refuse: our block RELEASED, then the leader released;
 * else we hold EX. SH: ballot, commit (held), our sector RELEASED with the SHARED mode block
 * (we hold SH once that write completed), then the leader released. Convert SH -> EX: a
 * ballot whose every write keeps our SHARED mode block; granted as EX by the write that
 * clears it; refused like EX; after an abort, with an accepted value in our block, it may
 * retract (block RELEASED, SHARED mode block kept) and give up, still holding SH. A commit
 * that times out (it may land later) is followed by the same retraction and the acquire
 * fails. Releases: EX writes its block RELEASED, then releases the leader if it still names
 * us at our lver; SH clears its mode block. A version our block has RELEASED (with an
 * accepted value) stays released: every later block we write for it keeps RELEASED, and if
 * our value wins it again we ballot for the next version instead of holding it (the
 * implementation's retractedLver; not written in AGREEMENT.md). Holding is a ghost (shB,
 * exB) set when the daemon would report the lease.
 *
 * SAFETY (assertions): one decided value per lver (every configuration); in CFG_CONVERT also:
 * no host is granted EX while another holds SH or EX, and none is granted SH while another
 * holds EX (hence never two EX holders of one lver, nor of two).
 *
 * ABSTRACTED AWAY
 *   * Time: lease expiry, host_dead_seconds, fencing, the watchdog and renewals. So in
 *     CFG_JOIN/LEAVE/CRASH/REPAIR there is no ownership: any host may start a ballot for the
 *     next lver at any time (a superset of the real behaviours; whether a lease is free only
 *     matters for mutual exclusion across versions, not for agreement). In CFG_CONVERT
 *     freedom is judged from the disk only and no host is judged DEAD (no takeover, no
 *     clearing of a dead SH holder's mode block, no mode-block generation).
 *   * The request record, the host bitmap, num_hosts, checksums and damaged sectors, sanlock
 *     hosts (rule 10), arithmetic overflow (rule 9), torn writes, I/O errors other than
 *     timeouts; the leader read inside phase reads (it only ends a ballot early).
 *   * Rule 4's held-slot wait and own-slot verification (no other name ever holds a slot);
 *     `host clear` (the same writes as a leave); a rejoin after a clean leave; renewals
 *     (a renewal that finds the epoch changed rebuilds like a ballot that does).
 *   * A token is 1 + h + N*(attempts of host h so far), unique per attempt, instead of a
 *     random nonce.
 *   * Bounds: hosts, lease versions (LMAX), ballots per host (NBALh), one leave, one crash,
 *     one epoch write timeout.
 *
 * CONFIGURATIONS (one -DCFG_x; check.sh runs all five, each exhaustively)
 *   CFG_JOIN    3 hosts, no clocks: host 0 a member (2 ballots); hosts 1 and 2 join
 *               concurrently (1 ballot each) and one epoch write may time out, land late
 *               and be retried; lver 1.
 *   CFG_LEAVE   3 members (2, 1, 1 ballots); any one may leave cleanly; dblock and leader
 *               writes may time out and land late or never; lvers 1-2.
 *   CFG_CRASH   2 members (2 ballots each); one may crash (DEAD: its block is still read)
 *               and rejoin as generation 1, one may leave; late writes as CFG_LEAVE; lvers 1-2.
 *   CFG_REPAIR  2 members (4 ballots each); leader writes may land late, so a leader can be
 *               moved back by two versions (rule 7); lvers 1-3.
 *   CFG_CONVERT 3 members, lvers 1-3: host 0 acquires SH then converts to EX (2 ballots),
 *               host 1 acquires EX (1 ballot), host 2 acquires SH (1 ballot); each may
 *               release what it holds; commits may time out and land late.
 *
 * MUTANTS (one -D at a time; each must produce an assertion violation; check.sh runs each
 * in the configuration named)
 *   NO_EPOCH_CHECK           JOIN    no epoch check in any ballot read
 *   EPOCH_PHASE1_ONLY        JOIN    the epoch checked in the initial and phase-1 reads only
 *   EPOCH_COUNTER            JOIN    the epoch a counter: read at join start, written + 1
 *   BUILD_IN_ONE_BATCH       JOIN    a rebuild reads the epoch and the slots in one batch
 *   EPOCH_BEFORE_DELTA_DONE  JOIN    the join's epoch and delta writes in flight together
 *   SAME_TOKEN_RETRY         JOIN    a retried epoch write repeats the timed-out one's token
 *   DROP_DEAD_AT_ONCE        CRASH   a crashed (DEAD) host's block dropped, its slot present
 *   LEAVE_DURING_BALLOT      CRASH   the leave written while the host's ballots run
 *   DROP_LEFT_AT_ONCE        LEAVE   a left host's block dropped at once (rule 6 removed)
 *   NO_LEADER_REPAIR         REPAIR  the ballot always for leader.lver + 1 (rule 7 removed);
 *                                    with -DOWN_LVER_GUARD too (never write a lower lver
 *                                    over our own block) it is safe: rule 7 is then liveness
 *   CONVERT_RETRACT_NO_SH    CONVERT a failed convert retracts with an empty mode block
 *   RELEASE_NOT_STICKY       CONVERT a version our block released can be granted to us again
 *   REFUSE_WITHOUT_RELEASED  CONVERT an EX refused for live SH holders releases the leader
 *                                    without marking our block RELEASED (needs -DNBAL1=2)
 *
 * WITNESSES (-DREACH_x: an assert(false) on a path the configuration is there to reach; each
 * must fail, or the configuration is safe for a vacuous reason): see check.sh.
 */

/* ------------------------------------------------------------------ configurations */
/* Bounds may be overridden with -D (check.sh uses the defaults). NBALh: ballots host h may
 * start, rebuilds included (0: it never ballots); LATE_D / LATE_L: dblock / leader writes may
 * time out (and land late, or never); RETRIES: epoch write timeouts (of joins), each followed
 * by a retry; LEAVES / CRASHES: clean leaves / crashes (each crashed host may rejoin once). */
#if !defined(CFG_JOIN) && !defined(CFG_LEAVE) && !defined(CFG_CRASH) && !defined(CFG_REPAIR) && !defined(CFG_CONVERT)
#define CFG_JOIN
#endif

#ifdef CFG_JOIN                 /* host 0 a member; hosts 1 and 2 join concurrently */
#define N        3
#define MEMBERS0 1
#define LMAX     1
#ifndef NBAL0
#define NBAL0    2
#define NBAL1    1
#define NBAL2    1
#endif
#define LATE_D   0
#define LATE_L   0
#define RETRIES  1
#define LEAVES   0
#define CRASHES  0
#endif

#ifdef CFG_LEAVE                /* 3 members; one leaves cleanly; late writes */
#define N        3
#define MEMBERS0 7
#define LMAX     2
#ifndef NBAL0
#define NBAL0    2
#define NBAL1    1
#define NBAL2    1
#endif
#define LATE_D   1
#define LATE_L   1
#define RETRIES  0
#define LEAVES   1
#define CRASHES  0
#endif

#ifdef CFG_CRASH                /* 2 members; one crashes (and may rejoin), one may leave; late writes */
#define N        2
#define MEMBERS0 3
#define LMAX     2
#ifndef NBAL0
#define NBAL0    2
#define NBAL1    2
#define NBAL2    0
#endif
#define LATE_D   1
#define LATE_L   1
#define RETRIES  0
#define LEAVES   1
#define CRASHES  1
#endif

#ifdef CFG_REPAIR               /* 2 members; late writes; a leader moved back by two versions */
#define N        2
#define MEMBERS0 3
#define LMAX     3
#ifndef NBAL0
#define NBAL0    4
#define NBAL1    4
#define NBAL2    0
#endif
#ifndef LATE_D
#define LATE_D   0
#endif
#define LATE_L   1
#define RETRIES  0
#define LEAVES   0
#define CRASHES  0
#endif

#ifdef CFG_CONVERT              /* 3 members: host 0 SH then convert, host 1 EX, host 2 SH */
#define N        3
#define MEMBERS0 7
#define LMAX     3
#ifndef NBAL0
#define NBAL0    2
#define NBAL1    1
#define NBAL2    1
#endif
#define LATE_D   0
#define LATE_L   1
#define RETRIES  0
#define LEAVES   0
#define CRASHES  0
#define CONVERT  1
#endif

#ifndef CONVERT
#define CONVERT  0
#endif

#define JOINED  printf("EV h%d joined: membership E=%d present=%d left=%d\n", h, E, P, Lf)
#ifdef REACH_REBUILT_DECIDES
#define REBUILT rbp = 1; printf("EV h%d rebuilt membership E=%d present=%d left=%d\n", h, E, P, Lf)
#else
#define REBUILT printf("EV h%d rebuilt membership E=%d present=%d left=%d\n", h, E, P, Lf)
#endif
#define WANT_EX   1      /* CFG_CONVERT: what an acquire is for */
#define WANT_SH   2
#define WANT_CONV 3
#define NBAL ((h == 0) -> NBAL0 : ((h == 1) -> NBAL1 : NBAL2))
#define EPB  8          /* the epoch sector in a batch's to-do set (bits 0..N-1: dblocks/slots) */
#if MEMBERS0 != ((1 << N) - 1) || LEAVES || CRASHES
#define EPR  EPB        /* ballots read the epoch (rule 3) */
#else
#define EPR  0          /* the epoch never changes: reading it could change nothing */
#endif
#define LDB  16         /* the leader sector */
#define ALL  ((1 << N) - 1)
#define VAL  (1 + h + N * g)

/* epoch checks (rule 3) */
#ifdef NO_EPOCH_CHECK
#define CHECK0 0
#define CHECK1 0
#define CHECK2 0
#else
#define CHECK0 1
#define CHECK1 1
#ifdef EPOCH_PHASE1_ONLY
#define CHECK2 0
#else
#define CHECK2 1
#endif
#endif

/* ------------------------------------------------------------------ the disk */
byte dm[N], db[N], dv[N], dl[N];   /* dblocks: mbal, bal, inp (value), lver */
byte ldrL, ldrV;                   /* leader: lver, owner value */
byte ep;                           /* epoch sector: token of the last membership change */
byte slot[N];                      /* delta-lease slots: 0 unused, 1 present, 2 left */
#if CONVERT
bit  drel[N], dsh[N];              /* RELEASED flag and SHARED mode block, in the dblock sector */
bit  ldrH;                         /* the leader is held (timestamp != 0) */
bit  shB[N], exB[N];               /* ghosts: host h holds SH / EX */
#endif

/* Writes in flight, per host: 0 none, 2 timed out (the writer went on; the Disk lands it
 * later, or never), 1 issued and waited for (only the mutant EPOCH_BEFORE_DELTA_DONE). */
byte pd[N], pdm[N], pdb[N], pdv[N], pdl[N];   /* dblock */
byte pl[N], pll[N], plv[N];                   /* leader */
byte pe[N], pet[N];                           /* epoch */
byte ps[N];                                   /* delta lease (slot present) */

byte decided[LMAX + 1];            /* ghost: the value decided for each lver, 0 until one is */
#if RETRIES
byte eto = RETRIES;                /* epoch write timeouts left */
#endif
#if LEAVES
byte lvb = LEAVES;                 /* leaves left */
#endif
#if CRASHES
bit  crashed[N];                   /* the incarnation running on host h has crashed (DEAD) */
#define ISDEAD(q) crashed[q]
#else
#define ISDEAD(q) 0
#endif
#if N > 2
#define DEADMASK (ISDEAD(0) | (ISDEAD(1) << 1) | (ISDEAD(2) << 2))
#else
#define DEADMASK (ISDEAD(0) | (ISDEAD(1) << 1))
#endif

/* The read set (rule 2), our own block included (it is never read: we know it). */
#if defined(DROP_LEFT_AT_ONCE)
#define RSET (((1 << h) | P) & ALL)
#elif defined(DROP_DEAD_AT_ONCE)
#define RSET (((1 << h) | (P & ~DEADMASK) | (Lf & ~dom)) & ALL)
#else
#define RSET (((1 << h) | P | (Lf & ~dom)) & ALL)
#endif
#define OTHERS (ALL & ~(1 << h))

/* ------------------------------------------------------------------ writes landing */
inline landd(q) {
	dm[q] = pdm[q]; db[q] = pdb[q]; dv[q] = pdv[q]; dl[q] = pdl[q];
	printf("EV late block write of h%d lands: mbal=%d bal=%d inp=%d lver=%d\n", q, dm[q], db[q], dv[q], dl[q]);
	dropd(q)
}
inline dropd(q) { pd[q] = 0; pdm[q] = 0; pdb[q] = 0; pdv[q] = 0; pdl[q] = 0 }
inline landl(q) {
#ifdef REACH_LEADER_BACK
	assert(pll[q] >= ldrL);           /* witness: a late commit moves the leader back */
#endif
	ldrL = pll[q]; ldrV = plv[q];
#if CONVERT
	ldrH = 1;                         /* only commits are written late in CFG_CONVERT */
#endif
	printf("EV late leader write of h%d lands: lver=%d owner=%d\n", q, ldrL, ldrV); dropl(q)
}
inline dropl(q) { pl[q] = 0; pll[q] = 0; plv[q] = 0 }
inline lande(q) { ep = pet[q]; printf("EV late epoch write of h%d lands: %d\n", q, ep); drope(q) }
inline drope(q) { pe[q] = 0; pet[q] = 0 }

active proctype Disk() {
end:
	do
	:: atomic { pd[0] != 0 -> landd(0) }
	:: atomic { pd[0] == 2 -> dropd(0); printf("EV late block write of h0 is lost\n") }
	:: atomic { pl[0] != 0 -> landl(0) }
	:: atomic { pl[0] == 2 -> dropl(0); printf("EV late leader write of h0 is lost\n") }
	:: atomic { pe[0] != 0 -> lande(0) }
	:: atomic { pe[0] == 2 -> drope(0); printf("EV late epoch write of h0 is lost\n") }
	:: atomic { ps[0] != 0 -> slot[0] = 1; ps[0] = 0; printf("EV delta write of h0 lands (slot present)\n") }
	:: atomic { pd[1] != 0 -> landd(1) }
	:: atomic { pd[1] == 2 -> dropd(1); printf("EV late block write of h1 is lost\n") }
	:: atomic { pl[1] != 0 -> landl(1) }
	:: atomic { pl[1] == 2 -> dropl(1); printf("EV late leader write of h1 is lost\n") }
	:: atomic { pe[1] != 0 -> lande(1) }
	:: atomic { pe[1] == 2 -> drope(1); printf("EV late epoch write of h1 is lost\n") }
	:: atomic { ps[1] != 0 -> slot[1] = 1; ps[1] = 0; printf("EV delta write of h1 lands (slot present)\n") }
#if N > 2
	:: atomic { pd[2] != 0 -> landd(2) }
	:: atomic { pd[2] == 2 -> dropd(2); printf("EV late block write of h2 is lost\n") }
	:: atomic { pl[2] != 0 -> landl(2) }
	:: atomic { pl[2] == 2 -> dropl(2); printf("EV late leader write of h2 is lost\n") }
	:: atomic { pe[2] != 0 -> lande(2) }
	:: atomic { pe[2] == 2 -> drope(2); printf("EV late epoch write of h2 is lost\n") }
	:: atomic { ps[2] != 0 -> slot[2] = 1; ps[2] = 0; printf("EV delta write of h2 lands (slot present)\n") }
#endif
	od
}

#if CRASHES
/* One crash, of any present host, at any step; its writes in flight may still land. */
active proctype Crasher() {
	if
	:: atomic { slot[0] == 1 -> crashed[0] = 1; printf("EV h0 CRASHES\n") }
	:: atomic { slot[1] == 1 -> crashed[1] = 1; printf("EV h1 CRASHES\n") }
#if N > 2
	:: atomic { slot[2] == 1 -> crashed[2] = 1; printf("EV h2 CRASHES\n") }
#endif
	fi
}
#endif

/* ------------------------------------------------------------------ epoch tokens */
/* A fresh token for one epoch write attempt (rule 4: never repeated): host h's ns-th attempt
 * writes 1 + h + N*ns, a function of the host's own history (so that states do not differ by
 * the global order in which tokens were handed out). */
inline newtoken() {               /* (used inside the step that issues the write) */
#if defined(EPOCH_COUNTER)
	skip                              /* mutant: tk = the epoch read earlier + 1 (countread) */
#elif defined(SAME_TOKEN_RETRY)
	if :: ej == 0 -> tk = 1 + h + N * ns; ns++ :: else fi    /* mutant: a retry repeats it */
#else
	tk = 1 + h + N * ns; ns++
#endif
}
inline countread() {              /* mutant EPOCH_COUNTER: read the epoch to add one to it */
#ifdef EPOCH_COUNTER
	tk = ep + 1
#else
	skip
#endif
}

#if LEAVES && defined(LEAVE_DURING_BALLOT)
/* Mutant: a host's leave is written at any time, while its ballots run and its writes fly. */
active proctype Leaver() {
	byte tk, ej, h = 7, ns = 7;       /* tokens 1 + 7 + 7N: never written by a Host */
	if
	:: atomic { lvb > 0 && slot[0] == 1 -> lvb--; slot[0] = 2; printf("EV h0 leaves (slot left) mid-ballot\n") }
	:: atomic { lvb > 0 && slot[1] == 1 -> lvb--; slot[1] = 2; printf("EV h1 leaves (slot left) mid-ballot\n") }
#if N > 2
	:: atomic { lvb > 0 && slot[2] == 1 -> lvb--; slot[2] = 2; printf("EV h2 leaves (slot left) mid-ballot\n") }
#endif
	fi;
#ifdef EPOCH_COUNTER
	countread();
#endif
	atomic { newtoken(); ep = tk; printf("EV epoch := %d (leave)\n", ep) }
}
#endif

/* ------------------------------------------------------------------ one sector read */
inline bump(mb) {                 /* our ballot number: the smallest b = h+1 (mod N) above mb */
	do :: B <= mb -> B = B + N :: else -> break od
}
inline iread(q) {                 /* initial read of a dblock */
	bump(dm[q]);
	if :: dl[q] > L -> L = dl[q] :: else fi;               /* rule 7: D */
#if LEAVES
	if
	:: (Lf >> q) & 1 -> lq = q + 1; ll = dl[q]; lz = (dm[q] == 0 && dl[q] == 0); lb0 = (db[q] == 0)
	:: else -> if :: (P >> q) & 1 && dl[q] > pmx -> pmx = dl[q] :: else fi
	fi;
#endif
#if CONVERT
	if :: drel[q] -> rlv[q] = dl[q] :: else -> rlv[q] = 0 fi
#endif
}
inline ldread() {                 /* initial read of the leader */
#if defined(NO_LEADER_REPAIR) || defined(REACH_REPAIR)
	ldL = ldrL;
#endif
#ifndef NO_LEADER_REPAIR
	if :: ldrL + 1 > L -> L = ldrL + 1 :: else fi;         /* rule 7: max(leader.lver + 1, D) */
#endif
#if CONVERT
	ldL = ldrL; ldV = ldrV; ldH = ldrH
#endif
}
inline p1read(q) {
	if
	:: dl[q] > L || (dl[q] == L && dm[q] > B) -> abrt = 1; todo = 0
	:: else -> if :: dl[q] == L && db[q] > bb -> bb = db[q]; bv = dv[q] :: else fi
	fi
}
inline p2read(q) {
	if
	:: dl[q] > L || (dl[q] == L && dm[q] > B) -> abrt = 1; todo = 0
	:: else
	fi
#if CONVERT
	; if :: dsh[q] -> shs = 1 :: else fi
#endif
}
inline sread(q) {                 /* a slot, for the membership */
	if
	:: slot[q] == 1 -> P = P | (1 << q); Lf = Lf & ~(1 << q)
	:: slot[q] == 2 -> Lf = Lf | (1 << q); P = P & ~(1 << q)
	:: else -> P = P & ~(1 << q); Lf = Lf & ~(1 << q)
	fi
}
inline epread(chk) {              /* the epoch sector, in a ballot's batch (rule 3) */
	if :: chk && ep != E -> mis = 1; E = ep; todo = 0 :: else fi
}

/* ------------------------------------------------------------------ our own sector */
/* A write the writer waits for is one step (issuing it is not observable: the writer does
 * nothing until it completes, and other hosts' steps interleave before it anyway); a write
 * that times out stays in flight (pd = 2) for the Disk to land later, or never. */
inline wblock() {
	dm[h] = m; db[h] = b; dv[h] = v; dl[h] = l;
	printf("EV h%d block := mbal=%d bal=%d inp=%d lver=%d\n", h, m, b, v, l)
#if CONVERT
	; drel[h] = rl; dsh[h] = sk
#endif
}
#if CONVERT
/* A failed ballot that may have left our value on disk: our block RELEASED (sanlock's
 * retract), our mode block as it was (rule 8). */
inline retract() {
	rl = 1;
#ifdef CONVERT_RETRACT_NO_SH
	sk = 0;                                  /* mutant: the mode block is lost */
#endif
	wblock(); printf("EV h%d retracts\n", h)
}
#endif
inline wblock_late() {
	pd[h] = 2; pdm[h] = m; pdb[h] = b; pdv[h] = v; pdl[h] = l;
	printf("EV h%d block write TIMES OUT (in flight): mbal=%d bal=%d inp=%d lver=%d\n", h, m, b, v, l)
}
inline p1local() {
	if :: l != L -> b = 0; v = 0 :: else fi;      /* our accepted value is kept for the same lver */
#ifdef REACH_KEPT_VALUE
	assert(b == 0);                               /* witness: a ballot keeps an accepted value */
#endif
	m = B; l = L
#if CONVERT
	; rl = rt; sk = (want == WANT_CONV)            /* rule 8: a convert keeps its SHARED mode block */
#endif
}

/* ------------------------------------------------------------------ ends of batches */
/* Each is run inside the step that reads the batch's last sector (or ends it early), so that
 * no state is stored for purely local computation. */
#ifdef BUILD_IN_ONE_BATCH
#define REBUILD_TODO (OTHERS | EPB)    /* mutant: the epoch read in the slots' batch */
#else
#define REBUILD_TODO OTHERS            /* the epoch was read: the slot reads are issued after */
#endif

inline clearballot() {
	L = 0; B = 0; x = 0; bb = 0; bv = 0; mis = 0; abrt = 0
#if LEAVES
	; pmx = 0; lq = 0; ll = 0; lz = 0; lb0 = 0
#endif
#if CONVERT || defined(NO_LEADER_REPAIR) || defined(REACH_REPAIR)
	; ldL = 0
#endif
#if CONVERT
	; ldV = 0; ldH = 0; rlv[0] = 0; rlv[1] = 0; rlv[2] = 0; shs = 0; rt = 0
#endif
}

inline ifin() {                   /* after the initial read */
	if
	:: mis -> printf("EV h%d epoch changed: %d, rebuild\n", h, E); clearballot(); todo = REBUILD_TODO; goto rebuild
	:: else
	fi;
#if LEAVES
	/* rule 6: a left block shown dominated leaves the read set (from this ballot's phases on) */
	if :: lq != 0 && (lz || pmx > ll || (pmx == ll && lb0)) -> dom = dom | (1 << (lq - 1)) :: else fi;
	pmx = 0; lq = 0; ll = 0; lz = 0; lb0 = 0;
#endif
#ifdef REACH_DOMINATED
	assert(dom == 0);                /* witness: a left block shown dominated */
#endif
#ifdef REACH_REPAIR
	assert(L <= ldL + 1);            /* witness: a ballot for D > leader.lver + 1 */
#endif
#ifdef NO_LEADER_REPAIR
	L = ldL + 1;                     /* mutant: never the instance the blocks show */
#endif
	if
	:: L > LMAX -> clearballot(); goto idle
#ifdef OWN_LVER_GUARD
	:: l > L -> clearballot(); goto idle     /* experiment: never lower our own block's lver */
#endif
#if CONVERT
	/* free: the leader is not held, or its owner's block says RELEASED at its lver */
	:: ldH && (ldV - 1) % N == h && !(rl && l == ldL) -> clearballot(); goto idle
	:: ldH && (ldV - 1) % N != h && rlv[(ldV - 1) % N] != ldL -> clearballot(); goto idle
#endif
	:: else ->
#if CONVERT && !defined(RELEASE_NOT_STICKY)
		/* a version our block has released (RELEASED with an accepted value) stays released:
		 * others may have taken it over on that flag, so it is never granted to us again */
		rt = (rl && b != 0 && l == L);
#endif
		printf("EV h%d ballot lver=%d mbal=%d E=%d P=%d Lf=%d dom=%d\n", h, L, B, E, P, Lf, dom);
		goto p1w
	fi
}
inline p1fin() {                  /* after the phase-1 read */
	if
	:: mis -> printf("EV h%d epoch changed: %d, rebuild\n", h, E); clearballot(); todo = REBUILD_TODO; goto rebuild
	:: abrt -> printf("EV h%d phase 1 abort\n", h); abrt = 0; bb = 0; bv = 0; goto aborted
	:: else -> if :: bb != 0 -> x = bv :: else -> x = VAL fi; bb = 0; bv = 0; goto p2w
	fi
}
inline p2fin() {                  /* after the phase-2 read */
	if
	:: mis -> printf("EV h%d epoch changed: %d, rebuild\n", h, E); clearballot(); todo = REBUILD_TODO; goto rebuild
	:: abrt -> printf("EV h%d phase 2 abort\n", h); abrt = 0; goto aborted
	:: else -> record(); goto decide     /* decided: the value is chosen now */
	fi
}
inline record() {                 /* ghost: one value per lver */
	printf("EV h%d DECIDES lver=%d value=%d\n", h, L, x);
	assert(decided[L] == 0 || decided[L] == x); decided[L] = x
#ifdef REACH_REJOINED_DECIDES
	; assert(g == 0)                  /* witness: a rejoined incarnation decides */
#endif
#ifdef REACH_RETRIED_JOINER_DECIDES
	; assert(ns < 2)                  /* witness: a joiner whose epoch write was retried decides */
#endif
#ifdef REACH_REBUILT_DECIDES
	; assert(!rbp)                    /* witness: decided on a rebuilt membership */
#endif
}

/* some host other than h holds SH or EX (CFG_CONVERT has 3 hosts) */
#define OTHERHOLDS ((h != 0 && (shB[0] || exB[0])) || (h != 1 && (shB[1] || exB[1])) || (h != 2 && (shB[2] || exB[2])))
#define OTHEREX    ((h != 0 && exB[0]) || (h != 1 && exB[1]) || (h != 2 && exB[2]))

/* ------------------------------------------------------------------ a host */
proctype Host(byte h) {
	byte g;                      /* generation of this incarnation */
	byte E, P, Lf, dom;          /* membership: label, present and left slots; left blocks dominated */
	byte m, b, v, l;             /* our dblock as we last wrote it */
	byte L, B, x;                /* the ballot: lver, ballot number, value */
	byte nb;                     /* ballots started */
	byte todo, bb, bv;           /* a batch: sectors still to read; highest bal seen and its value */
	bit  mis, abrt;              /* a batch saw a changed epoch / a reason to abort */
	byte tk, ej, ns;             /* epoch writes: token, retries, attempts */
	bit  joining;
#ifdef REACH_REBUILT_DECIDES
	bit  rbp;
#endif
#if LEAVES
	byte pmx, lq, ll;            /* rule 6: highest present lver read; a left block read (host + 1) ... */
	bit  lz, lb0;                /* ... all zero; its bal is 0 */
#endif
#if CONVERT || defined(NO_LEADER_REPAIR) || defined(REACH_REPAIR)
	byte ldL;                    /* the leader's lver as read */
#endif
#if CONVERT
	byte ldV, want, rlv[N];      /* the leader's owner; what we acquire; RELEASED blocks read (their lver) */
	bit  ldH, rl, sk, shs;       /* leader held; our RELEASED flag and SHARED mode; SHARED seen in phase 2 */
	bit  rt;                     /* this ballot's lver is one our block released (it stays released) */
#endif

	joining = 1 - ((MEMBERS0 >> h) & 1);
	if :: !joining -> P = MEMBERS0 :: else fi;
#if CRASHES
	do
	:: {
#endif
	if :: joining -> goto join :: else -> goto idle fi;

join:	/* rule 4 */
#ifdef EPOCH_COUNTER
	countread();                      /* the join's first read (slot and epoch) */
#endif
#ifdef EPOCH_BEFORE_DELTA_DONE
	/* mutant: delta and epoch writes in one submit: they land in either order */
	atomic { newtoken(); ps[h] = 1; pe[h] = 1; pet[h] = tk };
	(ps[h] == 0 && pe[h] == 0);
#else
	atomic { slot[h] = 1; printf("EV h%d g%d delta write (slot present)\n", h, g) }   /* completed: only now the epoch */
epw:
	if
	:: atomic { pe[h] == 0 -> newtoken(); ep = tk; printf("EV h%d epoch := %d (join)\n", h, tk); E = tk; tk = 0; ej = 0; joining = 0; P = 1 << h; Lf = 0; todo = OTHERS }
#if RETRIES
	:: atomic { pe[h] == 0 && eto > 0 -> newtoken(); pe[h] = 2; pet[h] = tk; eto--; ej++;
		           printf("EV h%d epoch write %d TIMES OUT\n", h, tk) };
		goto epw                       /* timed out: retry once it is gone (landed or lost) */
#endif
	fi;
#endif
#ifdef EPOCH_BEFORE_DELTA_DONE
	atomic { E = tk; tk = 0; joining = 0; P = 1 << h; Lf = 0; todo = OTHERS };
#endif
	/* the membership: every slot, read after our epoch write completed, labelled with our token */
	do
	:: atomic { todo & 1 -> todo = todo ^ 1; sread(0); if :: todo == 0 -> JOINED; goto idle :: else fi }
	:: atomic { todo & 2 -> todo = todo ^ 2; sread(1); if :: todo == 0 -> JOINED; goto idle :: else fi }
#if N > 2
	:: atomic { todo & 4 -> todo = todo ^ 4; sread(2); if :: todo == 0 -> JOINED; goto idle :: else fi }
#endif
	od;


idle:	/* between acquires */
	if
	:: nb < NBAL && slot[h] != 2 ->
#if CONVERT
		if
		:: !shB[h] && !exB[h] && h == 1 -> want = WANT_EX
		:: !shB[h] && !exB[h] && h != 1 -> want = WANT_SH
		:: shB[h] && h == 0 -> want = WANT_CONV
		fi;
#endif
		goto ballot
#if CONVERT
	:: atomic { exB[h] -> exB[h] = 0; printf("EV h%d releases EX\n", h); rl = 1; wblock() };            /* EX release: block RELEASED, */
		atomic { if :: ldrL == l && ldrV == VAL -> ldrH = 0; printf("EV h%d leader released\n", h) :: else fi }; /* then the leader */
		goto idle
	:: atomic { shB[h] -> shB[h] = 0; printf("EV h%d releases SH\n", h); sk = 0; wblock() }; goto idle    /* SH release: mode cleared */
#endif
#if LEAVES && !defined(LEAVE_DURING_BALLOT)
	/* rule 5: between acquires, with every write of ours completed: the slot, then the epoch */
	:: atomic { lvb > 0 && pd[h] == 0 && pl[h] == 0 && pe[h] == 0 && ps[h] == 0 -> lvb--; slot[h] = 2; printf("EV h%d leaves (slot left)\n", h) };
#ifdef EPOCH_COUNTER
		countread();
#endif
		atomic { newtoken(); ep = tk; printf("EV h%d epoch := %d (leave)\n", h, ep) };
		goto gone
#endif
	fi;

ballot:
	if
	:: nb >= NBAL -> goto idle
	:: else -> atomic { nb++; todo = (RSET | EPR | LDB) & ~(1 << h); L = l; B = h + 1; bump(m)
#if LEAVES
		; if :: (P >> h) & 1 -> pmx = l :: else fi
#endif
		}
	fi;
	/* initial read: leader, epoch, the read set; the lver is max(leader.lver + 1, D) */
	do
	:: atomic { todo & LDB -> todo = todo ^ LDB; ldread(); if :: todo == 0 -> ifin() :: else fi }
	:: atomic { todo & EPB -> todo = todo ^ EPB; epread(CHECK0); if :: todo == 0 -> ifin() :: else fi }
	:: atomic { todo & 1 -> todo = todo ^ 1; iread(0); if :: todo == 0 -> ifin() :: else fi }
	:: atomic { todo & 2 -> todo = todo ^ 2; iread(1); if :: todo == 0 -> ifin() :: else fi }
#if N > 2
	:: atomic { todo & 4 -> todo = todo ^ 4; iread(2); if :: todo == 0 -> ifin() :: else fi }
#endif
	od;

p1w:	/* phase 1: write mbal (and the lver), then read the read set and the epoch */
	if
	:: atomic { pd[h] == 0 -> p1local(); wblock(); todo = (RSET | EPR) & ~(1 << h); bb = b; bv = v }
#if LATE_D
	:: atomic { pd[h] == 0 -> p1local(); wblock_late(); clearballot() }; goto ballot   /* timed out */
#endif
	fi;
	do
	:: atomic { todo & EPB -> todo = todo ^ EPB; epread(CHECK1); if :: todo == 0 -> p1fin() :: else fi }
	:: atomic { todo & 1 -> todo = todo ^ 1; p1read(0); if :: todo == 0 -> p1fin() :: else fi }
	:: atomic { todo & 2 -> todo = todo ^ 2; p1read(1); if :: todo == 0 -> p1fin() :: else fi }
#if N > 2
	:: atomic { todo & 4 -> todo = todo ^ 4; p1read(2); if :: todo == 0 -> p1fin() :: else fi }
#endif
	od;

p2w:	/* phase 2: write bal and the value, then read again */
	if
	:: atomic { pd[h] == 0 -> b = B; v = x; wblock(); todo = (RSET | EPR) & ~(1 << h) }
#if LATE_D
	:: atomic { pd[h] == 0 -> b = B; v = x; wblock_late(); clearballot() }; goto ballot /* timed out */
#endif
	fi;
	do
	:: atomic { todo & EPB -> todo = todo ^ EPB; epread(CHECK2); if :: todo == 0 -> p2fin() :: else fi }
	:: atomic { todo & 1 -> todo = todo ^ 1; p2read(0); if :: todo == 0 -> p2fin() :: else fi }
	:: atomic { todo & 2 -> todo = todo ^ 2; p2read(1); if :: todo == 0 -> p2fin() :: else fi }
#if N > 2
	:: atomic { todo & 4 -> todo = todo ^ 4; p2read(2); if :: todo == 0 -> p2fin() :: else fi }
#endif
	od;

decide:	/* decided (the assertion), and the commit: the leader write */
#if CONVERT
	if
	:: atomic { pl[h] == 0 -> ldrL = L; ldrV = x; ldrH = 1; printf("EV h%d leader := lver=%d owner=%d held\n", h, L, x) }
#if LATE_L
	:: atomic { pl[h] == 0 -> pl[h] = 2; pll[h] = L; plv[h] = x;
		printf("EV h%d leader write lver=%d owner=%d held TIMES OUT\n", h, L, x) };
		atomic { if :: b != 0 -> retract() :: else fi; clearballot(); want = 0 };   /* the acquire fails */
		goto idle
#endif
	fi;
	if
	:: x != VAL -> skip                                              /* acquired by another */
	:: x == VAL && rt -> atomic { clearballot() }; goto ballot         /* released: on to the next */
	:: x == VAL && !rt && want == WANT_SH ->
		atomic { rl = 1; sk = 1; wblock(); assert(!OTHEREX); shB[h] = 1; printf("EV h%d HOLDS SH (lver %d)\n", h, L) }; /* SH: mode block, */
		atomic { if :: ldrL == L && ldrV == x -> ldrH = 0; printf("EV h%d leader released\n", h) :: else fi }
	:: x == VAL && !rt && want != WANT_SH && shs ->                         /* live SH holders: refuse */
#ifndef REFUSE_WITHOUT_RELEASED
		atomic { rl = 1; wblock(); printf("EV h%d refuses EX: SH seen\n", h) };        /* block RELEASED, */
#endif
		atomic { if :: ldrL == L && ldrV == x -> ldrH = 0; printf("EV h%d leader released\n", h) :: else fi }
	:: x == VAL && !rt && want != WANT_SH && !shs ->
		atomic {
#ifdef REACH_CONVERTED
			assert(want != WANT_CONV);   /* witness: a convert is granted EX */
#endif
			sk = 0; wblock(); assert(!OTHERHOLDS); shB[h] = 0; exB[h] = 1; printf("EV h%d HOLDS EX (lver %d)\n", h, L) }   /* EX */
	fi;
	atomic { clearballot(); want = 0 };
#else
	if
	:: atomic { pl[h] == 0 -> ldrL = L; ldrV = x; printf("EV h%d leader := lver=%d owner=%d\n", h, L, x); clearballot() }
#if LATE_L
	:: atomic { pl[h] == 0 -> pl[h] = 2; pll[h] = L; plv[h] = x; printf("EV h%d leader write lver=%d owner=%d TIMES OUT\n", h, L, x); clearballot() } /* timed out */
#endif
	fi;
#endif
	goto idle;

aborted:	/* a higher mbal or lver: a new ballot */
#if CONVERT
	if
	:: want == WANT_CONV && b != 0 ->            /* a convert may retract (rule 8) and give up */
		atomic { retract(); clearballot(); want = 0 };
		goto idle
	:: else -> clearballot()
	fi;
#else
	clearballot();
#endif
	goto ballot;

rebuild:	/* rule 3: the epoch just read (E) labels a read of every slot issued after it (rule 1) */
	do
	:: atomic { todo & EPB -> todo = todo ^ EPB; E = ep; if :: todo == 0 -> REBUILT; goto ballot :: else fi }
	:: atomic { todo & 1 -> todo = todo ^ 1; sread(0); if :: todo == 0 -> REBUILT; goto ballot :: else fi }
	:: atomic { todo & 2 -> todo = todo ^ 2; sread(1); if :: todo == 0 -> REBUILT; goto ballot :: else fi }
#if N > 2
	:: atomic { todo & 4 -> todo = todo ^ 4; sread(2); if :: todo == 0 -> REBUILT; goto ballot :: else fi }
#endif
	od;

#if CRASHES
	} unless { crashed[h] };
	/* A new incarnation, once none of the old one's writes is in flight: generation + 1, our
	 * slot and our dblock (read from the disk) reused, and a join. */
	(pd[h] == 0 && pl[h] == 0 && pe[h] == 0 && ps[h] == 0);
	atomic {
		crashed[h] = 0; g++; joining = 1;
		E = 0; P = 0; Lf = 0; dom = 0; todo = 0; tk = 0; ej = 0; clearballot();
		m = dm[h]; b = db[h]; v = dv[h]; l = dl[h]
	}
	od;
#endif
gone:
	skip
}

init {
	atomic {
		slot[0] = MEMBERS0 & 1;
		slot[1] = (MEMBERS0 >> 1) & 1;
#if N > 2
		slot[2] = (MEMBERS0 >> 2) & 1;
#endif
		run Host(0);
		run Host(1);
#if N > 2
		run Host(2)
#endif
	}
}
