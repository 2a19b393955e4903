"""bench/APP.md's handlers, registered on a python-socketio or roomcast
AsyncServer alike: B5 runs the same app code on both."""

ROOM = "bench"


def register(sio):
    @sio.event
    async def connect(sid, environ, auth=None):
        await sio.enter_room(sid, ROOM)

    @sio.event
    async def publish(sid, data):
        # publish P → msg P to room "bench" except the sender.
        await sio.emit("msg", data, room=ROOM, skip_sid=sid)

    @sio.event
    async def echo(sid, data):
        # echo D + ack → the ack carries D (the handler's return value is the ack).
        return data
