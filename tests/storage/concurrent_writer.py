"""One writer process for the concurrency test: submits judgments through storage.crud, retried keys included."""

import json
import sys
import time

from sqlalchemy.exc import OperationalError

from storage import crud
from storage.db import session_scope


def main(url: str, worker: int, count: int, prompt_id: int, generation_ids: list[int], user_id: int) -> None:
    latencies, errors = [], []
    for i in range(count):
        key = f"w{worker}-{i}"
        for _attempt in range(2 if i % 10 == 0 else 1):  # every 10th submit is sent twice, like a double click
            started = time.perf_counter()
            try:
                with session_scope(url) as session:
                    crud.add_judgment(
                        session,
                        kind="pairwise",
                        user_id=user_id,
                        prompt_id=prompt_id,
                        generation_ids=generation_ids,
                        payload={"choice": "a" if i % 2 else "b"},
                        client_key=key,
                    )
            except OperationalError as error:
                errors.append(str(error))
            latencies.append(time.perf_counter() - started)
    print(json.dumps({"latencies": latencies, "errors": errors}))


if __name__ == "__main__":
    url, worker, count, prompt_id, user_id = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        int(sys.argv[5]),
    )
    main(url, worker, count, prompt_id, json.loads(sys.argv[6]), user_id)
