//! A bare-metal binary that verifies one envelope: `.text` of this is the verifier's size.
#![no_std]
#![no_main]

use laissez_verify::{ActionClass, Request, TrustedKey, Verifier};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// Inputs live in RAM a host would fill; `black_box` keeps the optimiser from folding the
/// verification away (a volatile read of the whole array would bloat the probe itself).
static mut INPUT: [u8; 4096] = [0; 4096];
static mut KEY: [u8; 32] = [0; 32];
static mut RESULT: u32 = 0;

#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    let input: &[u8; 4096] = core::hint::black_box(unsafe { &*(&raw const INPUT) });
    let key: &[u8; 32] = core::hint::black_box(unsafe { &*(&raw const KEY) });
    let len = usize::from(input[0]) * 16;
    let outcome = match TrustedKey::from_bytes(key) {
        Ok(k) => {
            let keys = [k];
            let request = Request::new("crm.ticket.update", ActionClass::Write);
            match request {
                Ok(r) => match Verifier::new(&keys, "support-tickets").verify(
                    &input[1..len],
                    1_800_000_000,
                    Some(&r),
                ) {
                    Ok(v) => v.claims().max_uses() as u32,
                    Err(d) => d.code().len() as u32 + 1000,
                },
                Err(_) => 2,
            }
        }
        Err(_) => 1,
    };
    unsafe { core::ptr::write_volatile(&raw mut RESULT, outcome) };
    loop {}
}
