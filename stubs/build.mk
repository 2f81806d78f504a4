# stubs/: libscm (wire protocol, client stubs, provider skeleton, IDL) and
# the stub generator scm-idlc.
LIBSCM_SRCS := stubs/error.c stubs/wire.c stubs/outq.c stubs/client.c stubs/provider.c stubs/provider-ctl.c \
               stubs/provider-setup.c stubs/provider-handover.c stubs/provider-checkpoint.c stubs/provider-state.c \
               stubs/grant.c stubs/idl.c stubs/stub-rt.c \
               stubs/clipflow.c
LIBSCM_OBJS := $(LIBSCM_SRCS:%.c=$(B)/%.o)
LIBSCM      := $(B)/lib/libscm.a
LIBSCM_SO   := $(B)/lib/libscm.so.1
IDLC        := $(B)/bin/scm-idlc
# The public API: these headers are installed, and libscm.so exports what
# they declare and nothing else (stubs/libscm.sym, checked by
# tests/bats/core-abi.bats). The tree's own programs link the static
# libscm.a, where the internals (scm-internal/wire.h) stay reachable.
# Every header of stubs/include/scm but macro.h (the tree's own cleanup
# and helper macros, not an interface; it belongs under stubs/internal).
LIBSCM_HEADERS := $(filter-out %/macro.h,$(wildcard stubs/include/scm/*.h))
LIBSCM_SYMS := stubs/libscm.sym

$(LIBSCM): $(LIBSCM_OBJS) $(UTIL_LIBSCM_OBJS)
	@mkdir -p $(dir $@)
	$(Q_AR)rm -f $@ && $(AR) rcs $@ $^

$(LIBSCM_SO): $(LIBSCM_OBJS) $(UTIL_LIBSCM_OBJS) $(LIBSCM_SYMS)
	@mkdir -p $(dir $@)
	$(LINK) -shared -Wl,-soname,libscm.so.1 -Wl,--version-script=$(LIBSCM_SYMS) \
		-o $@ $(LIBSCM_OBJS) $(UTIL_LIBSCM_OBJS) $(JSONC_LIBS)
	$(Q)ln -sf libscm.so.1 $(B)/lib/libscm.so

$(IDLC): $(B)/stubs/idlc.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)

# Generated stubs: one pattern rule makes all four files of an interface.
$(B)/gen/scm/%-client.c $(B)/gen/scm/%-client.h $(B)/gen/scm/%-provider.c $(B)/gen/scm/%-provider.h: stubs/idl/%.json $(IDLC)
	@mkdir -p $(dir $@)
	$(Q_GEN)$(IDLC) $< $(B)/gen/scm

$(B)/gen/%.o: $(B)/gen/%.c
	$(COMPILE)
.SECONDARY:

BINS += $(IDLC)
all: $(LIBSCM) $(LIBSCM_SO)

$(B)/lib/libscm.pc: stubs/libscm.pc.in
	@mkdir -p $(dir $@)
	$(Q_GEN)sed 's|@PREFIX@|$(PREFIX)|g' $< > $@
all: $(B)/lib/libscm.pc

$(B)/tests/unit/test_wire: $(B)/tests/unit/test_wire.o $(LIBSCM)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(CMOCKA_LIBS)
$(B)/tests/unit/test_idl: $(B)/tests/unit/test_idl.o $(LIBSCM)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(CMOCKA_LIBS)
$(B)/tests/unit/test_grant: $(B)/tests/unit/test_grant.o $(LIBSCM)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(CMOCKA_LIBS)
$(B)/tests/unit/test_provider_defer: $(B)/tests/unit/test_provider_defer.o $(LIBSCM)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(CMOCKA_LIBS)
$(B)/tests/unit/test_provider_state: $(B)/tests/unit/test_provider_state.o $(LIBSCM)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(B)/tests/unit/test_wire $(B)/tests/unit/test_idl $(B)/tests/unit/test_grant \
	      $(B)/tests/unit/test_provider_defer \
	      $(B)/tests/unit/test_provider_state

$(B)/tests/fuzz/fuzz_wire: $(B)/tests/fuzz/fuzz_wire.o $(LIBSCM)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(JSONC_LIBS)
$(B)/tests/fuzz/fuzz_idl: $(B)/tests/fuzz/fuzz_idl.o $(LIBSCM)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(JSONC_LIBS)
$(B)/tests/fuzz/fuzz_clipflow: $(B)/tests/fuzz/fuzz_clipflow.o $(LIBSCM)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(JSONC_LIBS)
$(B)/tests/fuzz/fuzz_provider_state: $(B)/tests/fuzz/fuzz_provider_state.o $(LIBSCM)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(JSONC_LIBS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_provider_state
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_wire $(B)/tests/fuzz/fuzz_idl $(B)/tests/fuzz/fuzz_clipflow
