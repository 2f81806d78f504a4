# scm/manager: scm-dbus-manager, scmd's API on D-Bus (org.scm.Manager1),
# a client of scmd's control socket (libscm's internal wire) on libdbus-1.
DBUS_MGR := $(B)/libexec/scm-dbus-manager
DBUS_MGR_CFLAGS := $(shell pkg-config --cflags dbus-1 2>/dev/null)
DBUS_MGR_LIBS := $(shell pkg-config --libs dbus-1 2>/dev/null)
$(B)/scm/manager/%.o: PART_CFLAGS += $(DBUS_MGR_CFLAGS)
$(DBUS_MGR): $(B)/scm/manager/scm-dbus-manager.o $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_MGR_LIBS) $(JSONC_LIBS)
LIBEXEC += $(DBUS_MGR)
