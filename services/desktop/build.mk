# services/desktop: the in-container desktop agent (Xvfb framebuffer ->
# gfx surface, gfx input -> XTest), the script that starts an app, and the
# session manager (scm-desktop-session).
DESKTOP_X_CFLAGS := $(shell pkg-config --cflags x11 xtst 2>/dev/null)
DESKTOP_X_LIBS := $(shell pkg-config --libs x11 xtst 2>/dev/null)
$(B)/services/desktop/%.o: PART_CFLAGS += -Iservices/gfx -Iservices/desktop $(DESKTOP_X_CFLAGS)
$(B)/tests/unit/gfx/test_gfx_xwd.o: PART_CFLAGS += -Iservices/desktop -Iservices/gfx
$(B)/tests/fuzz/fuzz_gfx_desktop.o: PART_CFLAGS += -Iservices/desktop -Iservices/gfx

DESKTOP_LIB := $(B)/lib/libscmdesktop.a
$(DESKTOP_LIB): $(B)/services/desktop/xwd.o $(B)/services/desktop/spec.o
	@mkdir -p $(dir $@)
	$(Q_AR)$(AR) rcs $@ $^
# (services/gfx/build.mk links every gfx unit test with this library.)

DESKTOP_AGENT := $(B)/libexec/scm-desktop-agent
$(B)/services/desktop/agent.o $(B)/services/desktop/agent-windows.o: $(B)/gen/scm/gfx-client.h
# This fragment is read before services/gfx/build.mk, so name its library.
$(B)/services/desktop/agent-clipboard.o: $(B)/gen/scm/gfx-client.h
$(DESKTOP_AGENT): $(B)/services/desktop/agent.o $(B)/services/desktop/agent-clipboard.o $(B)/services/desktop/agent-windows.o $(B)/gen/scm/gfx-client.o $(DESKTOP_LIB) \
		$(B)/lib/libscmgfx.a $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(shell pkg-config --libs libpng 2>/dev/null) $(DESKTOP_X_LIBS)
LIBEXEC += $(DESKTOP_AGENT)
gfx: $(DESKTOP_AGENT)
gfx: $(DESKTOP_LIB)

$(B)/libexec/scm-desktop-app: services/desktop/scm-desktop-app
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 755 $< $@
LIBEXEC += $(B)/libexec/scm-desktop-app
gfx: $(B)/libexec/scm-desktop-app

$(B)/libexec/scm-desktop-spec: $(B)/services/desktop/spec-tool.o $(DESKTOP_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(B)/libexec/scm-desktop-spec
gfx: $(B)/libexec/scm-desktop-spec

$(B)/libexec/scm-desktop-novnc-shot: services/desktop/novnc-shot.py
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 755 $< $@
LIBEXEC += $(B)/libexec/scm-desktop-novnc-shot
gfx: $(B)/libexec/scm-desktop-novnc-shot

# libFuzzer target for the XWD header and the session spec (make fuzz).
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_gfx_desktop
$(B)/tests/fuzz/fuzz_gfx_desktop: $(B)/tests/fuzz/fuzz_gfx_desktop.o $(DESKTOP_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)

# make bench: bytes per second per encoding on a typing and a scrolling xterm.
$(B)/libexec/gfx-encoding-bench: services/desktop/encoding-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 755 $< $@
BENCH_DEPS += $(B)/libexec/gfx-encoding-bench
gfx: $(B)/libexec/gfx-encoding-bench

# The desktop session manager, a provider (stubs/idl/desktop.json): what
# `scmctl desktop` registers as the service "desktop" and drives.
DESKTOP_SESSION := $(B)/libexec/scm-desktop-session
DESKTOP_SESSION_OBJS := $(patsubst %,$(B)/services/desktop/%.o,session session-scmd session-leftovers session-launch session-ops session-main)
$(DESKTOP_SESSION_OBJS): $(B)/gen/scm/desktop-provider.h $(B)/gen/scm/gfx-client.h
$(DESKTOP_SESSION): $(DESKTOP_SESSION_OBJS) $(B)/gen/scm/desktop-provider.o $(B)/gen/scm/gfx-client.o \
		$(DESKTOP_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(DESKTOP_SESSION)
gfx: $(DESKTOP_SESSION)
