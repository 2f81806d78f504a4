# services/gfx: libscmgfx (the graphics proxy core), its test helpers and
# the proxy provider.
GFX_LIB_SRCS := $(addprefix services/gfx/,region.c surface.c compose.c timebank.c present.c \
		snapshot.c wsreq.c rfb_server.c rfb_update.c server.c font.c decor.c wm.c winjson.c \
		rfb_clip.c rfb_accept.c rfb_handover.c rfb_ws_handover.c server_handover.c clipboard.c clipfd.c copyfind.c vencrypt.c tls.c tls_cert.c rfb_stats.c)
GFX_LIB := $(B)/lib/libscmgfx.a
GFX_PNG_CFLAGS := $(shell pkg-config --cflags libpng 2>/dev/null)
GFX_PNG_LIBS := $(shell pkg-config --libs libpng 2>/dev/null)
GFX_VNC_CFLAGS := $(shell pkg-config --cflags libvncserver 2>/dev/null)
# GnuTLS: VeNCrypt on the RFB port (tls.c), which libvncserver 0.9.14 lacks.
GFX_TLS_CFLAGS := $(shell pkg-config --cflags gnutls 2>/dev/null)
GFX_VNC_LIBS := $(shell pkg-config --libs libvncserver gnutls 2>/dev/null) -pthread
# The parsers report errors as libscm's chains (scm/error.h).
GFX_LIBS := $(GFX_LIB) $(LIBSCM) $(JSONC_LIBS) $(GFX_PNG_LIBS) $(GFX_VNC_LIBS)

$(B)/services/gfx/%.o: PART_CFLAGS += -Iservices/gfx $(GFX_PNG_CFLAGS) $(GFX_VNC_CFLAGS) $(GFX_TLS_CFLAGS)
$(B)/tests/unit/gfx/%.o: PART_CFLAGS += -Iservices/gfx
$(B)/tests/fuzz/fuzz_gfx%.o: PART_CFLAGS += -Iservices/gfx

$(GFX_LIB): $(GFX_LIB_SRCS:%.c=$(B)/%.o)
	@mkdir -p $(dir $@)
	$(Q_AR)$(AR) rcs $@ $^

all: $(GFX_LIB)

# Unit tests: tests/unit/gfx/test_gfx_*.c, one program each.
GFX_UNIT := $(patsubst tests/unit/gfx/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/gfx/test_gfx_*.c))
UNIT_TESTS += $(GFX_UNIT)
$(GFX_UNIT): $(B)/tests/unit/%: $(B)/tests/unit/gfx/%.o $(GFX_LIB) $(DESKTOP_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(DESKTOP_LIB) $(UTIL_LIB) $(GFX_LIBS) $(GFX_UNIT_SCM) $(CMOCKA_LIBS)
# The desktop clipboard's test needs libscm's flow rules (scm-internal/clipflow.h).
$(B)/tests/unit/test_gfx_clipboard: GFX_UNIT_SCM = $(B)/lib/libscm.a
$(B)/tests/unit/test_gfx_clipboard: $(B)/lib/libscm.a

# `make B=... gfx` builds only this part (handy while other parts are in flux).
.PHONY: gfx
gfx: $(GFX_LIB) $(GFX_UNIT)

# Test helpers: the engine with synthetic clients, and a PNG checker.
$(B)/libexec/scm-gfx-testserver: $(B)/services/gfx/tools/testserver.o $(GFX_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(GFX_LIBS)
$(B)/libexec/scm-gfx-pngcheck: $(B)/services/gfx/tools/pngcheck.o
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(GFX_PNG_LIBS)
LIBEXEC += $(B)/libexec/scm-gfx-testserver $(B)/libexec/scm-gfx-pngcheck
gfx: $(B)/libexec/scm-gfx-testserver $(B)/libexec/scm-gfx-pngcheck $(B)/tests/unit-tests.list

# libFuzzer targets (make fuzz builds them with clang).
GFX_FUZZ := $(B)/tests/fuzz/fuzz_gfx_rfb $(B)/tests/fuzz/fuzz_gfx_present $(B)/tests/fuzz/fuzz_gfx_windows \
	$(B)/tests/fuzz/fuzz_gfx_vencrypt $(B)/tests/fuzz/fuzz_gfx_state $(B)/tests/fuzz/fuzz_gfx_wsframe
FUZZ_TARGETS += $(GFX_FUZZ)
$(GFX_FUZZ): $(B)/tests/fuzz/%: $(B)/tests/fuzz/%.o $(GFX_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(GFX_LIBS) $(FUZZ_LDFLAGS)

# The proxy provider and a test client, on the generated stubs and libscm.
GFX_PROXY := $(B)/libexec/scm-gfx-proxy
$(B)/services/gfx/proxy.o: $(B)/gen/scm/gfx-provider.h
$(B)/services/gfx/proxy-handover.o: $(B)/gen/scm/gfx-provider.h
$(GFX_PROXY): $(B)/services/gfx/proxy.o $(B)/services/gfx/proxy-handover.o $(B)/gen/scm/gfx-provider.o $(GFX_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(GFX_PNG_LIBS) $(GFX_VNC_LIBS)
GFX_CLIENT := $(B)/libexec/scm-gfx-client
$(B)/services/gfx/tools/client.o: $(B)/gen/scm/gfx-client.h
$(GFX_CLIENT): $(B)/services/gfx/tools/client.o $(B)/gen/scm/gfx-client.o $(GFX_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(GFX_PNG_LIBS) $(GFX_VNC_LIBS)
LIBEXEC += $(GFX_PROXY) $(GFX_CLIENT)
gfx: $(GFX_PROXY) $(GFX_CLIENT)

# A VNC viewer for tests and demos on libvncclient: authenticates, picks
# encodings, captures PNGs, clicks and types (replaces rfb-input.py, which
# spoke only security None).
$(B)/libexec/scm-gfx-rfb-input: $(B)/services/gfx/tools/vncview.o
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(GFX_PNG_LIBS) $(shell pkg-config --libs libvncclient 2>/dev/null)
LIBEXEC += $(B)/libexec/scm-gfx-rfb-input
gfx: $(B)/libexec/scm-gfx-rfb-input

# make bench: gfx-bench (tests/bench/run-all runs every $(B)/libexec/*-bench).
$(B)/libexec/gfx-bench: $(B)/services/gfx/tools/bench.o $(GFX_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(GFX_LIBS)
BENCH_DEPS += $(B)/libexec/gfx-bench
gfx: $(B)/libexec/gfx-bench
