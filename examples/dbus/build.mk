# examples/dbus: a client made with scm-dbus-stubgen from a D-Bus
# interface's introspection XML (docs/dbus.md, "Stubs from introspection"),
# run by tests/bats/core-dbus-bridge.bats.
NOTIFY_SEND := $(B)/libexec/scm-notify-send
$(B)/gen/dbus/notifications.c $(B)/gen/dbus/notifications.h: examples/dbus/notifications.xml $(B)/bin/scm-dbus-stubgen
	@mkdir -p $(dir $@)
	$(Q_GEN)$(B)/bin/scm-dbus-stubgen $< $(B)/gen/dbus/notifications
$(B)/gen/dbus/notifications.o: PART_CFLAGS += -I$(B)/gen/scm -I$(B)/gen/dbus
$(B)/gen/dbus/notifications.o: $(B)/gen/scm/dbus-client.h
$(B)/examples/dbus/notify-send.o: PART_CFLAGS += -I$(B)/gen/dbus
$(B)/examples/dbus/notify-send.o: $(B)/gen/dbus/notifications.h
$(NOTIFY_SEND): $(B)/examples/dbus/notify-send.o $(B)/gen/dbus/notifications.o $(B)/gen/scm/dbus-client.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(NOTIFY_SEND)
