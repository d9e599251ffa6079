/*
 * A baremetal x86_64 Xen PV guest for the lab: it prints its command line on
 * the PV console and shuts down with the reason the command line names
 * (shutdown=poweroff|reboot|crash|watchdog; poweroff by default).
 *
 * It registers no trap table and no event callback: a fault crashes the
 * domain, and events stay masked (the builder starts PV vCPUs masked), so the
 * console event channel is only ever used to notify, never waited on.
 *
 * The numbers below are Xen's stable guest ABI (xen/include/public/).
 */

#define HYPERVISOR_sched_op         29
#define HYPERVISOR_event_channel_op 32
#define SCHEDOP_yield               0
#define SCHEDOP_shutdown            2
#define EVTCHNOP_send               4

/* The read-only machine-to-phys table every 64-bit PV guest sees. */
#define MACH2PHYS_VIRT_START        0xffff800000000000

/* struct start_info, x86_64 layout */
#define SI_CONSOLE_MFN              72
#define SI_CONSOLE_EVTCHN           80
#define SI_CMD_LINE                 128

/* struct xencons_interface */
#define CONS_OUT                    1024
#define CONS_OUT_SIZE               2048
#define CONS_OUT_CONS               3080
#define CONS_OUT_PROD               3084

/* How long to wait for xenconsoled, in TSC ticks: a few seconds at 1-3 GHz. */
#define DRAIN_TICKS                 0x200000000

#define XEN_NOTE(type, desc) \
    .balign 4; .long 4, 2f - 1f, type; .asciz "Xen"; 1: desc; 2: .balign 4

/* What libxenguest's PV builder reads: it refuses images without a "generic"
 * loader (or a Linux guest OS) and "xen-3.0". PADDR_OFFSET equal to VIRT_BASE
 * makes the ELF's physical addresses its virtual ones, so the image starts at
 * pfn 0 and pfn N sits at __image_start + N * 4096, the console page included
 * (the builder allocates it right after the image, inside the initial map). */
    .section .note.Xen, "a", @note
    XEN_NOTE(6, .asciz "runx-lab-baremetal")     /* GUEST_OS */
    XEN_NOTE(7, .asciz "1")                      /* GUEST_VERSION */
    XEN_NOTE(5, .asciz "xen-3.0")                /* XEN_VERSION */
    XEN_NOTE(8, .asciz "generic")                /* LOADER */
    XEN_NOTE(3, .quad __image_start)             /* VIRT_BASE */
    XEN_NOTE(4, .quad __image_start)             /* PADDR_OFFSET */
    XEN_NOTE(1, .quad _start)                    /* ENTRY */
    XEN_NOTE(2, .quad hypercall_page)            /* HYPERCALL_PAGE */

    .text
    .globl _start
/* Entry: rsi = start_info, rsp = a boot stack the builder mapped. Hypercalls
 * clobber rax, rcx, r11 and may clobber the argument registers, so what lives
 * across them is in rbx, rbp and r12-r15. */
_start:
    mov     %rsi, %r12
    mov     SI_CONSOLE_MFN(%r12), %rax
    movabs  $MACH2PHYS_VIRT_START, %rcx
    mov     (%rcx,%rax,8), %rax
    shl     $12, %rax
    lea     __image_start(%rip), %r13
    add     %rax, %r13                          /* r13 = the console ring */
    mov     SI_CONSOLE_EVTCHN(%r12), %r14d

    /* The ring starts empty and the command line (at most 1023 bytes and a
     * newline) fits in it, so no need to wait for space. */
    lea     SI_CMD_LINE(%r12), %rsi
    mov     CONS_OUT_PROD(%r13), %eax
copy:
    movzbl  (%rsi), %edx
    test    %edx, %edx
    jz      copied
    call    put
    inc     %rsi
    jmp     copy
copied:
    mov     $'\n', %edx
    call    put
    mov     %eax, CONS_OUT_PROD(%r13)           /* x86 keeps stores in order */
    call    notify

    /* r15 = shutdown reason; later words win. */
    xor     %r15d, %r15d
    lea     SI_CMD_LINE(%r12), %rsi
word:
    cmpb    $' ', (%rsi)
    jne     1f
    inc     %rsi
    jmp     word
1:  cmpb    $0, (%rsi)
    je      parsed
    lea     words(%rip), %rdx
entry:
    movzbl  (%rdx), %eax
    cmp     $0xff, %eax
    je      skip_word
    lea     1(%rdx), %rdi
    mov     %rsi, %rcx
compare:
    movzbl  (%rdi), %r8d
    test    %r8d, %r8d
    jz      word_end
    cmpb    %r8b, (%rcx)
    jne     mismatch
    inc     %rdi
    inc     %rcx
    jmp     compare
word_end:
    cmpb    $' ', (%rcx)
    je      match
    cmpb    $0, (%rcx)
    je      match
mismatch:
    cmpb    $0, (%rdi)
    je      1f
    inc     %rdi
    jmp     mismatch
1:  lea     1(%rdi), %rdx
    jmp     entry
match:
    mov     %eax, %r15d
skip_word:
    cmpb    $0, (%rsi)
    je      parsed
    cmpb    $' ', (%rsi)
    je      word
    inc     %rsi
    jmp     skip_word
parsed:

    /* Shutting down does not wait for xenconsoled: once the domain is gone
     * (on_poweroff = "destroy") whatever it left in the ring is lost. Yield
     * until the ring is read, re-notifying in case xenconsoled bound the
     * event channel after the first one, but not forever. */
    rdtsc
    shl     $32, %rdx
    or      %rax, %rdx
    movabs  $DRAIN_TICKS, %rbx
    add     %rdx, %rbx
drain:
    mov     CONS_OUT_CONS(%r13), %eax
    cmp     CONS_OUT_PROD(%r13), %eax
    je      shutdown
    call    notify
    mov     $SCHEDOP_yield, %edi
    xor     %esi, %esi
    call    hypercall_page + HYPERVISOR_sched_op * 32
    rdtsc
    shl     $32, %rdx
    or      %rax, %rdx
    cmp     %rbx, %rdx
    jb      drain

shutdown:
    push    %r15                                /* struct sched_shutdown */
    mov     $SCHEDOP_shutdown, %edi
    mov     %rsp, %rsi
    call    hypercall_page + HYPERVISOR_sched_op * 32
    ud2                                         /* not reached; crashes if it is */

/* out[prod % size] = dl; prod (eax) += 1 */
put:
    mov     %eax, %ecx
    and     $(CONS_OUT_SIZE - 1), %ecx
    mov     %dl, CONS_OUT(%r13,%rcx)
    inc     %eax
    ret

notify:
    push    %r14                                /* struct evtchn_send */
    mov     $EVTCHNOP_send, %edi
    mov     %rsp, %rsi
    call    hypercall_page + HYPERVISOR_event_channel_op * 32
    pop     %r14
    ret

/* Each word: the value it selects, then the word. */
words:
    .byte 0; .asciz "shutdown=poweroff"
    .byte 1; .asciz "shutdown=reboot"
    .byte 3; .asciz "shutdown=crash"
    .byte 4; .asciz "shutdown=watchdog"
    .byte 0xff

/* Xen fills this page with one 32-byte stub per hypercall before the guest runs. */
    .balign 4096
hypercall_page:
    .fill 4096, 1, 0xcc
