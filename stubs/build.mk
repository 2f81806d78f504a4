# stubs/: libscm (wire protocol, client stubs, provider skeleton, IDL) and
# the stub generator scm-idlc.
LIBSCM_SRCS := stubs/error.c stubs/wire.c stubs/outq.c stubs/client.c stubs/provider.c \
               stubs/grant.c stubs/idl.c stubs/stub-rt.c \
               stubs/clipflow.c
LIBSCM_OBJS := $(LIBSCM_SRCS:%.c=$(B)/%.o)
LIBSCM      := $(B)/lib/libscm.a
LIBSCM_SO   := $(B)/lib/libscm.so.1
IDLC        := $(B)/bin/scm-idlc

$(LIBSCM): $(LIBSCM_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(LIBSCM_SO): $(LIBSCM_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libscm.so.1 -o $@ $^ $(LDFLAGS) $(JSONC_LIBS)
	ln -sf libscm.so.1 $(B)/lib/libscm.so

$(IDLC): $(B)/stubs/idlc.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(JSONC_LIBS)

# Generated stubs: one pattern rule makes all four files of an interface.
$(B)/gen/scm/%-client.c $(B)/gen/scm/%-client.h $(B)/gen/scm/%-provider.c $(B)/gen/scm/%-provider.h: stubs/idl/%.json $(IDLC)
	@mkdir -p $(dir $@)
	$(IDLC) $< $(B)/gen/scm

$(B)/gen/%.o: $(B)/gen/%.c
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@
.SECONDARY:

BINS += $(IDLC)
all: $(LIBSCM) $(LIBSCM_SO)

$(B)/lib/libscm.pc: stubs/libscm.pc.in
	@mkdir -p $(dir $@)
	sed 's|@PREFIX@|$(PREFIX)|g' $< > $@
all: $(B)/lib/libscm.pc

$(B)/tests/unit/test_wire: $(B)/tests/unit/test_wire.o $(LIBSCM)
	$(CC) -o $@ $^ $(LDFLAGS) $(JSONC_LIBS) $(CMOCKA_LIBS)
$(B)/tests/unit/test_idl: $(B)/tests/unit/test_idl.o $(LIBSCM)
	$(CC) -o $@ $^ $(LDFLAGS) $(JSONC_LIBS) $(CMOCKA_LIBS)
$(B)/tests/unit/test_grant: $(B)/tests/unit/test_grant.o $(LIBSCM)
	$(CC) -o $@ $^ $(LDFLAGS) $(JSONC_LIBS) $(CMOCKA_LIBS)
$(B)/tests/unit/test_provider_defer: $(B)/tests/unit/test_provider_defer.o $(LIBSCM)
	$(CC) -o $@ $^ $(LDFLAGS) $(JSONC_LIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(B)/tests/unit/test_wire $(B)/tests/unit/test_idl $(B)/tests/unit/test_grant \
	      $(B)/tests/unit/test_provider_defer
$(B)/tests/unit/%.o: PART_CFLAGS += -Istubs

$(B)/tests/fuzz/fuzz_wire: $(B)/tests/fuzz/fuzz_wire.o $(LIBSCM)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(FUZZ_LDFLAGS) $(JSONC_LIBS)
$(B)/tests/fuzz/fuzz_idl: $(B)/tests/fuzz/fuzz_idl.o $(LIBSCM)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(FUZZ_LDFLAGS) $(JSONC_LIBS)
$(B)/tests/fuzz/fuzz_clipflow: $(B)/tests/fuzz/fuzz_clipflow.o $(LIBSCM)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(FUZZ_LDFLAGS) $(JSONC_LIBS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_wire $(B)/tests/fuzz/fuzz_idl $(B)/tests/fuzz/fuzz_clipflow
$(B)/tests/fuzz/%.o: PART_CFLAGS += -Istubs
