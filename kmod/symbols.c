// SPDX-License-Identifier: GPL-2.0
/*
 * Resolution of the few mm symbols dtrack would like to use but that the
 * kernel does not export.  This is the only file that plays such tricks:
 * kallsyms_lookup_name() is itself unexported since 5.7, so its address is
 * taken from a kprobe placed on it, and it then resolves the rest.
 *
 * With CONFIG_X86_KERNEL_IBT, objtool seals functions whose address is never
 * taken (their ENDBR becomes a NOP) and an indirect call to them traps, so a
 * resolved address is only used if the function starts with ENDBR (or IBT
 * is off).  Every symbol here has a slower exported fallback, so a missing
 * or sealed symbol costs speed, never correctness; it is logged once.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kprobes.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <asm/ibt.h>
#include "dtrack.h"

struct dtrack_symbols dtrack_sym __ro_after_init;

/* 0: use only the exported fallbacks (also a way to test them) */
static bool dtrack_use_kallsyms = true;
module_param_named(use_kallsyms, dtrack_use_kallsyms, bool, 0444);
MODULE_PARM_DESC(use_kallsyms, "Resolve unexported helpers (default 1)");

typedef unsigned long (*dtrack_kallsyms_fn)(const char *name);

/* May this address be the target of an indirect call? */
static bool __init dtrack_callable(unsigned long addr)
{
	if (!addr)
		return false;
#ifdef CONFIG_X86_KERNEL_IBT
	if (cpu_feature_enabled(X86_FEATURE_IBT))
		return is_endbr(*(u32 *)addr);
#endif
	return true;
}

static unsigned long __init dtrack_kallsyms_addr(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	unsigned long addr;

	if (register_kprobe(&kp) < 0)
		return 0;
	addr = (unsigned long)kp.addr;
	unregister_kprobe(&kp);
	return addr;
}

#define DTRACK_SYM(field, name) { #name, offsetof(struct dtrack_symbols, field) }

struct dtrack_sym_entry {
	const char *name;
	size_t offset;
};

static const struct dtrack_sym_entry dtrack_sym_table[] __initconst = {
	DTRACK_SYM(ptrace_may_access, ptrace_may_access),
	DTRACK_SYM(flush_tlb_mm_range, flush_tlb_mm_range),
	DTRACK_SYM(mn_invalidate_range_start, __mmu_notifier_invalidate_range_start),
	DTRACK_SYM(mn_invalidate_range_end, __mmu_notifier_invalidate_range_end),
};

int __init dtrack_symbols_init(void)
{
	dtrack_kallsyms_fn lookup;
	unsigned long addr;
	unsigned int i;

	if (!dtrack_use_kallsyms)
		return 0;
	addr = dtrack_kallsyms_addr();
	if (!dtrack_callable(addr)) {
		pr_info("kallsyms_lookup_name unusable: using exported fallbacks\n");
		return 0;
	}
	lookup = (dtrack_kallsyms_fn)addr;

	for (i = 0; i < ARRAY_SIZE(dtrack_sym_table); i++) {
		addr = lookup(dtrack_sym_table[i].name);
		if (!dtrack_callable(addr)) {
			pr_info("%s unusable: using its fallback\n",
				dtrack_sym_table[i].name);
			continue;
		}
		*(unsigned long *)((char *)&dtrack_sym +
				   dtrack_sym_table[i].offset) = addr;
	}
	/* start without end (or the reverse) would unbalance notifiers */
	if (!dtrack_sym.mn_invalidate_range_start ||
	    !dtrack_sym.mn_invalidate_range_end) {
		dtrack_sym.mn_invalidate_range_start = NULL;
		dtrack_sym.mn_invalidate_range_end = NULL;
	}
	return 0;
}
