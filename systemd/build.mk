# systemd/: scmd's units (scmd.service, scmd.socket, scmd-endpoint@.socket),
# its tmpfiles.d entry, and the default configuration tree /etc/scm (the
# README in etc/scm/, the profiles and manifests of the shipped services
# from examples/), installed by `make install` beside the programs.
#
# The configuration is the administrator's once installed, as a package's
# conffiles: install puts a file there when it is missing, or still as the
# last install shipped it (dpkg's rule: the sums of what was shipped are
# kept in PREFIX/share/scm/etc-scm.sha256), so an upgrade brings new
# versions of files nobody changed; a changed one is kept, and said so.
# Uninstall removes only files still as shipped. Units and tmpfiles are the package's (changes go in
# /etc/systemd/system drop-ins) and are replaced.
sysconfdir     ?= /etc
scmconfdir     := $(sysconfdir)/scm
systemdunitdir ?= $(PREFIX)/lib/systemd/system
tmpfilesdir    ?= $(PREFIX)/lib/tmpfiles.d
exampledir      = $(PREFIX)/share/scm/examples
confsums        = $(PREFIX)/share/scm/etc-scm.sha256

SD_UNITS_GEN := $(B)/systemd/scmd.service
SD_UNITS     := $(SD_UNITS_GEN) systemd/scmd.socket systemd/scmd-endpoint@.socket
# what /etc/scm gets: DEST:SOURCE, DEST relative to it
SCM_CONF_PROFILES := base dbus-notify desktop-app desktop-clipboard gfx-proxy vdisk-provider vdisk-reader vdisk-writer
SCM_CONF_SERVICES := dbus echo vdisk
SCM_CONF_FILES := README:etc/scm/README \
	$(foreach p,$(SCM_CONF_PROFILES),profiles/$(p).json:examples/profiles/$(p).json) \
	$(foreach s,$(SCM_CONF_SERVICES),services/$(s).json:examples/services/$(s).json)
SCM_EXAMPLES := examples/desktops/two-apps.json

# The service's paths follow PREFIX and sysconfdir; a rebuild when they change.
$(B)/systemd/scmd.service: systemd/scmd.service.in $(B)/systemd/paths
	@mkdir -p $(dir $@)
	$(Q_GEN)sed -e 's|@bindir@|$(PREFIX)/bin|g' -e 's|@scmconfdir@|$(scmconfdir)|g' $< >$@
$(B)/systemd/paths: FORCE
	@mkdir -p $(dir $@)
	@echo '$(PREFIX) $(scmconfdir)' | cmp -s - $@ || echo '$(PREFIX) $(scmconfdir)' >$@
.PHONY: FORCE install-systemd uninstall-systemd
FORCE:
all: $(SD_UNITS_GEN)

install: install-systemd
install-systemd: $(SD_UNITS_GEN)
	$(Q)$(INSTALL) -d $(DESTDIR)$(systemdunitdir) $(DESTDIR)$(tmpfilesdir) $(DESTDIR)$(exampledir) \
		$(DESTDIR)$(scmconfdir)/profiles $(DESTDIR)$(scmconfdir)/services
	$(call Q_STEP,INSTALL,$(DESTDIR)$(systemdunitdir))$(INSTALL) -m 644 $(SD_UNITS) $(DESTDIR)$(systemdunitdir)/
	$(call Q_STEP,INSTALL,$(DESTDIR)$(tmpfilesdir))$(INSTALL) -m 644 systemd/scm.conf $(DESTDIR)$(tmpfilesdir)/scm.conf
	$(Q)$(INSTALL) -m 644 $(SCM_EXAMPLES) $(DESTDIR)$(exampledir)/
	$(call Q_STEP,INSTALL,$(DESTDIR)$(scmconfdir))sums='$(DESTDIR)$(confsums)'; \
	for f in $(SCM_CONF_FILES); do \
		rel=$${f%%:*} dst='$(DESTDIR)$(scmconfdir)/'$${f%%:*} src=$${f#*:}; \
		if [ ! -e "$$dst" ]; then $(INSTALL) -m 644 "$$src" "$$dst" || exit 1; \
		elif cmp -s "$$src" "$$dst"; then :; \
		elif [ -f "$$sums" ] && grep -qxF "$$(sha256sum <"$$dst" | cut -d' ' -f1)  $$rel" "$$sums"; then \
			$(INSTALL) -m 644 "$$src" "$$dst" || exit 1; echo "install: updated $$dst (unchanged since the last install)"; \
		else echo "install: keeping $$dst, changed here (the shipped one is $$src)"; fi; \
	done; \
	for f in $(SCM_CONF_FILES); do \
		echo "$$(sha256sum <"$${f#*:}" | cut -d' ' -f1)  $${f%%:*}"; done >"$$sums.new" && mv "$$sums.new" "$$sums"
	@# On the host itself (no DESTDIR): make the directories now rather
	@# than at the next boot, and tell a running systemd about the units.
	@if [ -z "$(DESTDIR)" ]; then \
		command -v systemd-tmpfiles >/dev/null && systemd-tmpfiles --create $(tmpfilesdir)/scm.conf || true; \
		[ -d /run/systemd/system ] && systemctl daemon-reload || true; fi

uninstall: uninstall-systemd
uninstall-systemd:
	$(call Q_STEP,RM,scm units in $(DESTDIR)$(systemdunitdir) and $(DESTDIR)$(scmconfdir))rm -f \
		$(addprefix $(DESTDIR)$(systemdunitdir)/,$(notdir $(SD_UNITS))) \
		$(DESTDIR)$(tmpfilesdir)/scm.conf $(addprefix $(DESTDIR)$(exampledir)/,$(notdir $(SCM_EXAMPLES))) \
		$(DESTDIR)$(confsums)
	$(Q)for f in $(SCM_CONF_FILES); do \
		dst='$(DESTDIR)$(scmconfdir)/'$${f%%:*} src=$${f#*:}; \
		if cmp -s "$$src" "$$dst"; then rm -f "$$dst"; \
		elif [ -e "$$dst" ]; then echo "uninstall: keeping $$dst, changed here"; fi; \
	done
	$(Q)rmdir $(DESTDIR)$(exampledir) $(DESTDIR)$(scmconfdir)/profiles $(DESTDIR)$(scmconfdir)/services \
		$(DESTDIR)$(scmconfdir) 2>/dev/null || true
	$(Q)rmdir $(DESTDIR)$(systemdunitdir) $(DESTDIR)$(PREFIX)/lib/systemd $(DESTDIR)$(tmpfilesdir) 2>/dev/null || true
