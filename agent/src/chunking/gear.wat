;; The FastCDC gear-hash loop (fastcdc.ts drives it). Memory: the gear table
;; at byte 0 (256 little-endian u32), the data to chunk after it.
;; cut scans bytes i, i+1, … with maskS until `normal`, then with maskL until
;; `limit`, and returns the index just past the first byte whose hash has no
;; bit of the mask set, or 0 if none has before `limit` (0 is never past a
;; byte of data: the table comes first). The hash runs on from one mask to
;; the other, as in the paper's normalised chunking.
(module
  (import "chunker" "memory" (memory 1))
  (func (export "cut") (param $i i32) (param $normal i32) (param $limit i32) (param $maskS i32) (param $maskL i32) (result i32)
    (local $hash i32)
    (block $pastNormal
      (loop $small
        (br_if $pastNormal (i32.ge_u (local.get $i) (local.get $normal)))
        (local.set $hash (i32.add (i32.shl (local.get $hash) (i32.const 1))
                                  (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $small (i32.and (local.get $hash) (local.get $maskS)))
        (return (local.get $i))))
    (block $pastLimit
      (loop $large
        (br_if $pastLimit (i32.ge_u (local.get $i) (local.get $limit)))
        (local.set $hash (i32.add (i32.shl (local.get $hash) (i32.const 1))
                                  (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $large (i32.and (local.get $hash) (local.get $maskL)))
        (return (local.get $i))))
    (i32.const 0)))
