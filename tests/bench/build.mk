# tests/bench/: the `make bench` programs of the benchmark part.
#
# ipc-bench: 64-byte round trips through raw SEQPACKET, pipes, dbus-daemon,
# dbus-broker and a brokered scm channel, plus connect latency.
IPC_BENCH      := $(B)/tests/bench/ipc-bench
IPC_BENCH_SRCS := tests/bench/ipc-bench.c tests/bench/ipc-connect.c tests/bench/ipc-util.c \
                  tests/bench/ipc-stats.c tests/bench/ipc-raw.c tests/bench/ipc-dbus.c \
                  tests/bench/ipc-buses.c tests/bench/ipc-broker-ctl.c tests/bench/ipc-scm.c
IPC_BENCH_OBJS := $(IPC_BENCH_SRCS:%.c=$(B)/%.o)
DBUS_CFLAGS    := $(shell pkg-config --cflags dbus-1 2>/dev/null)
DBUS_LIBS      := $(shell pkg-config --libs dbus-1 2>/dev/null)

$(B)/tests/bench/%.o: PART_CFLAGS += $(DBUS_CFLAGS)

$(IPC_BENCH): $(IPC_BENCH_OBJS) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_LIBS) $(JSONC_LIBS)

# The scm contender runs scmd, scmctl and the echo provider of this build.
BENCH_DEPS += $(IPC_BENCH) $(SCMD) $(SCMCTL) $(ECHO_PROVIDER)

# scmd-bench: scmd's own cost per idle container and per live channel, and
# container launch through scmctl and scmd (a script; run-all runs it).
$(B)/tests/bench/scmd-bench: tests/bench/scmd-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 755 $< $@
BENCH_DEPS += $(B)/tests/bench/scmd-bench $(B)/libexec/scm-ctl-ping

# restart-bench: the blackout of scmd's restart in place with live channels
# and containers (docs/restart.md; a script, run-all runs it).
$(B)/tests/bench/restart-bench: tests/bench/restart-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 755 $< $@
BENCH_DEPS += $(B)/tests/bench/restart-bench $(B)/libexec/scm-test-client
# zpool-bench: the adaptive compressor against fixed zstd levels 1, 3, 9
# under a steady and a bursty producer (issue 15).
$(B)/tests/bench/zpool-bench: $(B)/tests/bench/zpool-bench.o $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(ZSTD_LIBS)
BENCH_DEPS += $(B)/tests/bench/zpool-bench
# handover-bench: a provider's restart with its channels (docs/handover.md):
# the longest gap a pinging client sees across `service restart`s.
$(B)/tests/bench/handover-bench: tests/bench/handover-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 755 $< $@
BENCH_DEPS += $(B)/tests/bench/handover-bench $(B)/libexec/scm-test-client $(ECHO_HANDOVER)
