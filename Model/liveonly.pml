/*
 * Live-only Disk Paxos reads, one consensus instance (one lease version), checked by spin.
 *
 * Hosts 0 and 1 are in the lockspace from the start; host 2 joins. Each host runs Disk Paxos
 * ballots whose phase reads cover only its *read set*: its own block, the blocks of hosts in
 * its live view that are not known DEAD, and the blocks of DEAD hosts not yet shown stale
 * (DESIGN.md rules 1 and 2). Time is an abstract tick clock T. A view has an age; a ballot
 * starts only on a view at most V ticks old (rule 3), decides only if it took at most B ticks
 * (rule 4), and a joiner starts no ballot until T - Tj > V + B (rule 5). Hosts may crash; only a
 * crashed host can be declared DEAD. A phase read of the whole read set is one atomic step, as
 * the batch both sanlock and DiskLease submit at once (and as the simulator snapshots it);
 * every write is its own step, so hosts interleave between each write and each read.
 *
 * Safety: every decided value is the same (assert in decide).
 *
 * Mutants (one -D at a time) remove a rule; each must produce a violation:
 *   NO_JOIN_WAIT, JOIN_WAIT_EQUAL, EARLY_DEAD, DROP_DEAD_AT_ONCE, NO_VIEW_AGE
 */
#define N 3
#define V 1
#define B 1
#define TMAX 4

byte T = 0;               /* the abstract clock */
byte mbal[N];             /* Disk Paxos blocks: the highest ballot started ...             */
byte bal[N];              /* ... the ballot of the last accepted value ...                 */
byte inp[N];              /* ... and that value (host id + 1; 0 = none)                    */
byte joined = 3;          /* bit h: host h's delta lease is on disk (hosts 0 and 1 joined) */
byte Tj = 255;            /* when host 2 joined                                            */
byte crashed = 0;         /* bit h: host h stopped for good                                */
byte dead = 0;            /* bit h: host h is known DEAD (host_dead_seconds passed)        */
byte decided = 0;         /* the decided value, 0 until one is                             */

active proctype Clock() {
    do
    :: atomic { T < TMAX -> T++ }
    :: atomic { T == TMAX -> break }
    od
}

/* DEAD is declared only for a crashed host (the watchdog has reset it). */
active proctype Death() {
    do
#ifdef EARLY_DEAD
    :: atomic { (dead & 2) == 0 -> dead = dead | 2 }    /* host 1 called DEAD while it runs */
#else
    :: atomic { (crashed & 2) != 0 && (dead & 2) == 0 -> dead = dead | 2 }
#endif
    :: atomic { T == TMAX -> break }
    od
}

inline decide(v) {
    assert(decided == 0 || decided == v);
    decided = v
}

proctype Host(byte h) {
    byte b = h + 1;        /* ballot numbers are unique: b ≡ h+1 (mod N) */
    byte ballots = 0;
    byte view, viewTime, readSet, stale = 0, start, q, v, bk, bkBal;

    if
    :: h == 2 -> atomic { joined = joined | 4; Tj = T }
    :: else -> skip
    fi;
    /* The first view, taken when the host started watching. */
    atomic { view = joined; viewTime = T };

ballot:
    /* Host 0 may retry once after an abort; hosts 1 and 2 (the joiner) run one ballot. */
    if
    :: ballots == 2 || (h != 0 && ballots == 1) -> goto done
    :: else -> skip
    fi;
    /* Optionally refresh the view (renewal or on demand) before the ballot. */
    if
    :: atomic { view = joined; viewTime = T }
    :: skip
    fi;
    atomic {
#ifndef NO_VIEW_AGE
        T - viewTime <= V &&
#endif
#if defined(NO_JOIN_WAIT)
        true;
#elif defined(JOIN_WAIT_EQUAL)
        (h != 2 || T - Tj >= V + B);
#else
        (h != 2 || T - Tj > V + B);
#endif
        start = T;
        ballots++;
        /* Read set: own block, live view minus DEAD, plus DEAD blocks not yet shown stale. */
#ifdef DROP_DEAD_AT_ONCE
        readSet = ((view & ~dead) | (1 << h))
#else
        readSet = ((view & ~dead) | (dead & ~stale) | (1 << h))
#endif
    };
    /* Phase 1: write mbal, keep the accepted (bal, inp); then read the set. */
    mbal[h] = b;
    d_step {
        bk = 255; bkBal = 0; q = 0;
        do
        :: q >= N -> break
        :: q < N && (readSet & (1 << q)) == 0 -> q++
        :: q < N && (readSet & (1 << q)) != 0 ->
            if
            :: q != h && mbal[q] > b -> q = N + 1      /* abort */
            :: else ->
                if
                :: inp[q] != 0 && bal[q] > bkBal -> bk = q; bkBal = bal[q]
                :: else -> skip
                fi;
                if
                :: (dead & (1 << q)) != 0 && bal[q] == 0 -> stale = stale | (1 << q)
                :: else -> skip
                fi;
                q++
            fi
        od
    };
    if
    :: q == N + 1 -> goto aborted
    :: else -> skip
    fi;
    if
    :: bk != 255 -> v = inp[bk]
    :: else -> v = h + 1
    fi;
    /* Phase 2: write (bal, inp); read the set again. */
    atomic { bal[h] = b; inp[h] = v };
    if
    :: (h == 1) -> atomic { crashed = crashed | (1 << h) }; goto done   /* crash after phase 2 */
    :: skip
    fi;
    d_step {
        q = 0;
        do
        :: q >= N -> break
        :: q < N && (readSet & (1 << q)) == 0 -> q++
        :: q < N && (readSet & (1 << q)) != 0 ->
            if
            :: q != h && mbal[q] > b -> q = N + 1
            :: else -> q++
            fi
        od
    };
    if
    :: q == N + 1 -> goto aborted
    :: else -> skip
    fi;
    atomic {
        if
        :: T - start <= B -> decide(v)        /* rule 4: only a bounded ballot decides */
        :: else -> skip
        fi
    };
    /* The decider may crash right after deciding (its commit lost). Host 1 is the one that
     * crashes: whose block a dead-host read must still find. */
    if
    :: (h == 1) -> atomic { crashed = crashed | (1 << h) }
    :: skip
    fi;
    goto done;

aborted:
    b = b + N;
    goto ballot;
done:
    skip
}

init {
    atomic {
        run Host(0);
        run Host(1);
        run Host(2)
    }
}
