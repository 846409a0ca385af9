extends Node2D
## A node that keeps moving while the game runs, so tests see its position change.

## Pixels a second along x.
@export var speed: float = 60.0

## `_process` calls so far: time-control tests count the frames an advance runs.
var frames: int = 0


func _process(delta: float) -> void:
	frames += 1
	position.x += speed * delta


## Its body: a green square, so screenshots show it move.
func _draw() -> void:
	draw_rect(Rect2(0, 0, 24, 24), Color(0, 1, 0))
