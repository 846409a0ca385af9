extends Node
## Demo game that the tests launch under the debugger.

var counter: int = 0


func _ready() -> void:
	print("demo: ready")
	var total: int = add_numbers(2, 3)
	print("demo: total=%d" % total)


func _process(_delta: float) -> void:
	counter += 1
	if counter % 60 == 0:
		print("demo: tick %d" % counter)
		print("demo: twice=%d" % twice(counter))


## Adds two numbers; the debugger tests step through it.
func add_numbers(a: int, b: int) -> int:
	var sum: int = a + b
	return sum


## Runs every 60 frames, so a breakpoint here or in add_numbers is hit soon after it is set.
func twice(n: int) -> int:
	var doubled: int = add_numbers(n, n)
	return doubled
